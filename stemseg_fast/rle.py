"""COCO run-length encoding of binary masks, through pycocotools, in the two forms the project
meets: pycocotools' own (``counts`` bytes) and JSON files' (``counts`` str)."""
import numpy as np
from pycocotools import mask as mask_utils


def encode_mask(mask):
    """Compressed RLE of a binary ``[H, W]`` mask; ``counts`` is bytes (pycocotools' form)."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask must have shape [H, W], got {list(mask.shape)}")
    return mask_utils.encode(np.asfortranarray(mask.astype(np.uint8, copy=False)))


def decode_rle(rle):
    """``np.ndarray[H, W]`` uint8 mask of a compressed RLE (``counts`` bytes or str)."""
    # The list form: pycocotools' single-dict path warns under NumPy 2 on every call.
    return mask_utils.decode([to_pycocotools(rle)])[:, :, 0]


def to_pycocotools(rle):
    """The RLE with ``counts`` as bytes, as pycocotools takes it."""
    counts = rle["counts"]
    return {"size": [int(v) for v in rle["size"]],
            "counts": counts.encode("ascii") if isinstance(counts, str) else counts}


def to_json(rle):
    """The RLE with ``counts`` as str, as YouTube-VIS/COCO JSON files store it."""
    counts = rle["counts"]
    return {"size": [int(v) for v in rle["size"]],
            "counts": counts.decode("ascii") if isinstance(counts, bytes) else counts}
