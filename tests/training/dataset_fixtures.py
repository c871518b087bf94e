"""Small dataset files written into a test's tmp folder: frames from the synthetic clips,
annotations in each supported format."""

import json
import os

import cv2
import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

from stemseg_fast.synthetic import synthetic_clip


def write_frames(folder, frames, extension=".jpg"):
    os.makedirs(folder, exist_ok=True)
    names = []
    for index, frame in enumerate(frames):
        name = f"{index:05d}{extension}"
        cv2.imwrite(os.path.join(folder, name), frame)
        names.append(name)
    return names


def rle_json(mask):
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": list(rle["size"]), "counts": rle["counts"].decode("ascii")}


def uncompressed_rle(mask):
    """Column-major run lengths starting with a background run, as COCO's iscrowd RLE."""
    flat = mask.astype(np.uint8).flatten(order="F")
    counts, current, run = [], 0, 0
    for value in flat:
        if value == current:
            run += 1
        else:
            counts.append(run)
            current, run = value, 1
    counts.append(run)
    return {"size": list(mask.shape), "counts": counts}


def box_polygon(x0, y0, x1, y1):
    """Polygon covering pixel columns x0..x1-1 and rows y0..y1-1 exactly (pycocotools
    rasterises polygon vertices at pixel corners)."""
    return [[x0, y0, x1, y0, x1, y1, x0, y1]]


def make_ytvis(root, *, num_videos=2, num_frames=12, height=48, width=64, seed=0):
    """A YouTube-VIS JSON mixing compressed RLE, uncompressed RLE, polygons and nulls.

    Returns (annotation path, image root, expected masks {video name: [I, F, H, W]})."""
    image_root = os.path.join(root, "JPEGImages")
    videos, annotations, expected = [], [], {}
    for v in range(num_videos):
        clip = synthetic_clip(num_frames, height, width, num_objects=2, seed=seed + v)
        name = f"video{v}"
        files = write_frames(os.path.join(image_root, name), clip.frames)
        videos.append(
            {
                "id": v + 1,
                "name": name,
                "height": height,
                "width": width,
                "length": num_frames,
                "file_names": [f"{name}/{f}" for f in files],
            }
        )
        masks = np.stack([clip.instance_ids == k for k in range(2)]).astype(np.uint8)
        masks[0, 0] = 0  # instance 0 absent in frame 0: a null entry
        segmentations = [
            [
                None if not m.any() else (rle_json(m) if f % 2 else uncompressed_rle(m))
                for f, m in enumerate(masks[k])
            ]
            for k in range(2)
        ]
        # a third instance given as polygons on every other frame
        polygon_mask = np.zeros((num_frames, height, width), np.uint8)
        polygon_segmentations = []
        for f in range(num_frames):
            if f % 2 == 0:
                polygon_mask[f, 2:10, 3:12] = 1
                polygon_segmentations.append(box_polygon(3, 2, 12, 10))
            else:
                polygon_segmentations.append(None)
        for category, segs in zip(clip.categories, segmentations):
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "video_id": v + 1,
                    "category_id": category,
                    "iscrowd": 0,
                    "segmentations": segs,
                }
            )
        annotations.append(
            {
                "id": len(annotations) + 1,
                "video_id": v + 1,
                "category_id": 3,
                "iscrowd": 0,
                "segmentations": polygon_segmentations,
            }
        )
        expected[name] = np.concatenate([masks, polygon_mask[None]])
    data = {
        "videos": videos,
        "annotations": annotations,
        "categories": [{"id": i, "name": f"class{i}"} for i in (1, 2, 3)],
    }
    path = os.path.join(root, "ytvis.json")
    with open(path, "w") as handle:
        json.dump(data, handle)
    return path, image_root, expected


def make_coco(root, *, num_images=3, height=40, width=56, seed=0):
    image_root = os.path.join(root, "images")
    os.makedirs(image_root, exist_ok=True)
    images, annotations = [], []
    for i in range(num_images):
        clip = synthetic_clip(1, height, width, num_objects=2, seed=seed + i)
        name = f"img{i}.jpg"
        cv2.imwrite(os.path.join(image_root, name), clip.frames[0])
        images.append({"id": i + 1, "file_name": name, "height": height, "width": width})
        for k in range(2):
            mask = clip.instance_ids[0] == k
            if mask.any():
                annotations.append(
                    {
                        "id": len(annotations) + 1,
                        "image_id": i + 1,
                        "category_id": clip.categories[k],
                        "iscrowd": 0,
                        "segmentation": rle_json(mask),
                    }
                )
        annotations.append(
            {
                "id": len(annotations) + 1,
                "image_id": i + 1,
                "category_id": 1,
                "iscrowd": 1,
                "segmentation": uncompressed_rle(
                    np.pad(np.ones((4, 4), bool), ((0, height - 4), (0, width - 4)))
                ),
            }
        )
    path = os.path.join(root, "coco.json")
    with open(path, "w") as handle:
        json.dump(
            {
                "images": images,
                "annotations": annotations,
                "categories": [{"id": c, "name": f"class{c}"} for c in (1, 2, 3)],
            },
            handle,
        )
    return path, image_root


def write_indexed_png(path, labels):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    image = Image.fromarray(labels.astype(np.uint8), mode="P")
    palette = np.zeros((256, 3), np.uint8)
    palette[1:8] = [
        [128, 0, 0],
        [0, 128, 0],
        [128, 128, 0],
        [0, 0, 128],
        [128, 0, 128],
        [0, 128, 128],
        [128, 128, 128],
    ]
    image.putpalette(palette.flatten().tolist())
    image.save(path)


def make_davis(
    root,
    *,
    sequences=("seq_a", "seq_b"),
    num_frames=12,
    height=48,
    width=64,
    resolution="480p",
    void_box=True,
):
    """DAVIS layout; returns {sequence: label maps [F, H, W]}."""
    expected = {}
    for s, sequence in enumerate(sequences):
        clip = synthetic_clip(num_frames, height, width, num_objects=2, seed=10 + s)
        frame_dir = (
            os.path.join(root, "JPEGImages", resolution, sequence)
            if resolution
            else os.path.join(root, "JPEGImages", sequence)
        )
        write_frames(frame_dir, clip.frames)
        labels = (clip.instance_ids + 1).astype(np.uint8)
        if void_box:
            labels[:, :3, :3] = 255
        annotation_dir = (
            os.path.join(root, "Annotations", resolution, sequence)
            if resolution
            else os.path.join(root, "Annotations", sequence)
        )
        for f in range(num_frames):
            write_indexed_png(os.path.join(annotation_dir, f"{f:05d}.png"), labels[f])
        expected[sequence] = labels
    return expected


def make_kitti(root, *, sequence="0002", num_frames=14, height=40, width=72, empty=()):
    """instances_txt/<seq>.txt and images/<seq>/<frame>.png; frames in ``empty`` carry no
    object. Returns (annotation dir, image root, masks [2, F, H, W], ignore [F, H, W])."""
    clip = synthetic_clip(num_frames, height, width, num_objects=2, seed=3)
    image_dir = os.path.join(root, "images", sequence)
    os.makedirs(image_dir, exist_ok=True)
    lines = []
    masks = np.zeros((2, num_frames, height, width), np.uint8)
    ignore = np.zeros((num_frames, height, width), np.uint8)
    for f in range(num_frames):
        cv2.imwrite(os.path.join(image_dir, f"{f:06d}.png"), clip.frames[f])
        if f in empty:
            continue
        for k, (object_id, class_id) in enumerate(((1001, 1), (2002, 2))):
            mask = clip.instance_ids[f] == k
            if mask.any():
                masks[k, f] = mask
                lines.append(
                    f"{f} {object_id} {class_id} {height} {width} {rle_json(mask)['counts']}"
                )
        region = np.zeros((height, width), np.uint8)
        region[-4:, -6:] = 1
        ignore[f] = region
        lines.append(f"{f} 10000 10 {height} {width} {rle_json(region)['counts']}")
    annotation_dir = os.path.join(root, "instances_txt")
    os.makedirs(annotation_dir, exist_ok=True)
    with open(os.path.join(annotation_dir, f"{sequence}.txt"), "w") as handle:
        handle.write("\n".join(lines) + "\n")
    return annotation_dir, os.path.join(root, "images"), masks, ignore
