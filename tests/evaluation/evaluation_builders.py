"""Builders for tiny YouTube-VIS / OVIS files the evaluation tests write by hand."""

import numpy as np
from pycocotools import mask as mask_utils


def box(height, width, top, bottom, left, right):
    """A uint8 mask [height, width] with rows top..bottom-1 and columns left..right-1 set."""
    mask = np.zeros((height, width), dtype=np.uint8)
    mask[top:bottom, left:right] = 1
    return mask


def rle(mask):
    """Compressed RLE with str counts, as results files hold it; None for None."""
    if mask is None:
        return None
    encoded = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": list(encoded["size"]), "counts": encoded["counts"].decode("ascii")}


class VideoDataset:
    """Accumulates videos, categories and annotations into a YouTube-VIS ground-truth dict."""

    def __init__(self, categories=((1, "person"), (2, "dog"))):
        self.videos = []
        self.categories = [{"id": c, "name": n} for c, n in categories]
        self.annotations = []
        self.results = []

    def video(self, video_id, num_frames, height=32, width=32):
        self.videos.append(
            {
                "id": video_id,
                "height": height,
                "width": width,
                "length": num_frames,
                "file_names": [f"v{video_id}/{t:05d}.jpg" for t in range(num_frames)],
            }
        )
        return video_id

    def truth(self, video_id, category_id, masks, iscrowd=0, occlusion=None):
        entry = {
            "id": len(self.annotations) + 1,
            "video_id": video_id,
            "category_id": category_id,
            "iscrowd": iscrowd,
            "segmentations": [rle(m) for m in masks],
            "areas": [None if m is None else int(m.sum()) for m in masks],
        }
        if occlusion is not None:
            entry["occlusion"] = occlusion
        self.annotations.append(entry)

    def predict(self, video_id, category_id, masks, score):
        self.results.append(
            {
                "video_id": video_id,
                "category_id": category_id,
                "score": score,
                "segmentations": [rle(m) for m in masks],
            }
        )

    def ground_truth(self):
        return {
            "videos": self.videos,
            "categories": self.categories,
            "annotations": self.annotations,
        }
