"""The official output mask path: a frame's track labels at clustering resolution -> one binary
mask per track at the source size -> one COCO RLE per track.

One-hot at clustering resolution -> x4 bilinear if clustering ran at stride 4 -> crop the
padding -> bilinear to the source frame size -> > 0.5 (official output generators). The masks
of K tracks are made together, at most :data:`MASK_CHUNK` at a time, which bounds the [K, H, W]
float buffers.
"""
from typing import Dict, Tuple

import pycocotools.mask as mask_utils
import torch
import torch.nn.functional as F

from stemseg_fast.io.rle import encode_masks

EMBEDDING_STRIDE = 4  # decoder outputs are at stride 4 of the padded input (reference §1.5)
MASK_CHUNK = 16


def frame_masks(labels: torch.Tensor, track_ids: torch.Tensor, *, resized: Tuple[int, int],
                frame_size: Tuple[int, int], full_resolution: bool) -> torch.Tensor:
    """The masks of K tracks of one frame -> [K, W, H] uint8 (W before H, so the host copy is
    the column-major array pycocotools encodes).

    Args:
        labels: [H_c, W_c] int64 track labels at clustering resolution.
        resized: (height, width) of the resized frame inside the padded network input.
        full_resolution: clustering ran at the input resolution (else at stride 4).
    """
    one_hot = (labels[None] == track_ids[:, None, None]).float()[None]  # [1, K, H_c, W_c]
    if not full_resolution:
        one_hot = F.interpolate(one_hot, scale_factor=EMBEDDING_STRIDE, mode="bilinear",
                                align_corners=False)
    one_hot = one_hot[:, :, :resized[0], :resized[1]]
    one_hot = F.interpolate(one_hot, size=frame_size, mode="bilinear", align_corners=False)
    return (one_hot[0] > 0.5).to(torch.uint8).transpose(1, 2).contiguous()


def encode_frame_masks(labels: torch.Tensor, track_ids: torch.Tensor, *,
                       resized: Tuple[int, int], frame_size: Tuple[int, int],
                       full_resolution: bool) -> Dict[int, dict]:
    """{track id: COCO RLE at the source size} for the tracks of one frame.

    On a GPU the masks are run-length encoded where they are and only the run lengths are
    copied back (:func:`~stemseg_fast.io.rle.encode_masks`); on the CPU pycocotools encodes them
    in place, which is faster there (``benchmarks/host_path.py`` measures both)."""
    ids, rles = track_ids.tolist(), {}
    for start in range(0, len(ids), MASK_CHUNK):
        chunk = track_ids[start:start + MASK_CHUNK]
        masks = frame_masks(labels, chunk, resized=resized, frame_size=frame_size,
                            full_resolution=full_resolution)
        if masks.is_cuda:
            encoded = encode_masks(masks.transpose(1, 2))
        else:
            encoded = mask_utils.encode(masks.numpy().transpose(2, 1, 0))
        rles.update(zip(ids[start:start + MASK_CHUNK], encoded))
    return rles
