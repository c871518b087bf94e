"""COCO run-length encoding of binary masks, through pycocotools, in the two forms the project
meets: pycocotools' own (``counts`` bytes) and JSON files' (``counts`` str), and the checks that
stand between an untrusted file and pycocotools.

pycocotools trusts its input: an RLE whose runs fall short of height x width makes 2.0.11 loop
forever in ``mask.iou``, and a NaN polygon coordinate sends ``frPyObjects`` into a loop that
allocates without bound. :func:`checked_rle` and :func:`polygons_to_rle` refuse such data with a
``ValueError`` naming where it came from.
"""

import math
from typing import Any, Dict, List, NamedTuple, Optional, Tuple, Union

import numpy as np
import torch
from pycocotools import _mask
from pycocotools import mask as mask_utils


def encode_mask(mask: np.ndarray) -> Dict[str, Any]:
    """Compressed RLE of a binary ``[H, W]`` mask; ``counts`` is bytes (pycocotools' form)."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask must have shape [H, W], got {list(mask.shape)}")
    return mask_utils.encode(np.asfortranarray(mask.astype(np.uint8, copy=False)))


class MaskRuns(NamedTuple):
    """Where the runs of K masks change value, as :func:`find_mask_runs` finds them.

    Attributes:
        first_values (Tensor[K] bool): each mask's first pixel (column-major).
        boundaries_per_mask (Tensor[K] int64): how many of ``ends`` each mask owns, in order.
        ends (Tensor[B] int32): the column-major positions where a run ends, mask after mask.
        size (tuple): the masks' (height, width).
    """

    first_values: torch.Tensor
    boundaries_per_mask: torch.Tensor
    ends: torch.Tensor
    size: Tuple[int, int]

    def to_host(self, *, pinned: bool = False) -> "MaskRuns":
        """The same runs on the host. ``pinned`` (runs on a CUDA device): copied into
        page-locked memory without waiting, so read them only once the copying stream has
        passed this point (an event recorded there has completed); else copied and waited
        for."""
        if not pinned or not self.ends.is_cuda:
            return self._replace(**{name: getattr(self, name).cpu() for name in _RUN_TENSORS})
        copies = {}
        for name in _RUN_TENSORS:
            tensor = getattr(self, name)
            copies[name] = torch.empty(tensor.shape, dtype=tensor.dtype, pin_memory=True).copy_(
                tensor, non_blocking=True
            )
        return self._replace(**copies)


_RUN_TENSORS = ("first_values", "boundaries_per_mask", "ends")


def find_mask_runs(masks: torch.Tensor) -> MaskRuns:
    """The run boundaries of ``K`` binary masks ``[K, H, W]`` (bool or uint8), found where the
    masks are: a difference along each mask's column-major order, as COCO counts run. On a GPU
    it waits once, for the boundaries' count; the result stays on the device."""
    if masks.dim() != 3:
        raise ValueError(f"masks must have shape [K, H, W], got {list(masks.shape)}")
    num_masks, height, width = masks.shape
    if num_masks and height * width == 0:
        raise ValueError(f"masks must have at least one pixel, got {height}x{width}")
    flat = (masks != 0).transpose(1, 2).reshape(num_masks, height * width)  # column-major
    mask_index, position = torch.nonzero(flat[:, 1:] != flat[:, :-1], as_tuple=True)
    return MaskRuns(
        first_values=flat[:, 0] if height * width else flat.new_zeros(num_masks),
        boundaries_per_mask=torch.bincount(mask_index, minlength=num_masks),
        ends=(position + 1).to(torch.int32),  # a run is shorter than 2^31 pixels
        size=(height, width),
    )


def rles_from_runs(runs: MaskRuns) -> List[Dict[str, Any]]:
    """Compressed RLEs of host :class:`MaskRuns`: pycocotools compresses the counts
    (``frUncompressedRLE``, the same ``rleToString`` that ``encode`` ends with)."""
    height, width = runs.size
    size = height * width
    first_values, per_mask, ends = (getattr(runs, name).numpy() for name in _RUN_TENSORS)
    if first_values.size == 0:
        return []
    uncompressed = []
    for index, boundaries in enumerate(np.split(ends, np.cumsum(per_mask)[:-1])):
        edges = np.concatenate(([0], boundaries, [size])).astype(np.int64)
        counts = np.diff(edges)
        if first_values[index]:  # COCO counts start with a (possibly empty) run of zeros
            counts = np.concatenate(([0], counts))
        uncompressed.append({"size": [height, width], "counts": counts.astype(np.uint32)})
    return _mask.frUncompressedRLE(uncompressed, height, width)


def encode_masks(masks: torch.Tensor) -> List[Dict[str, Any]]:
    """Compressed RLEs of ``K`` binary masks ``[K, H, W]`` (bool or uint8, any device), byte for
    byte what pycocotools ``encode`` gives, without copying the masks to the host: only the
    run boundaries come back (2 x 4 bytes per boundary instead of H x W bytes per mask).

    :func:`find_mask_runs`, :meth:`MaskRuns.to_host` and :func:`rles_from_runs` in one; the
    parts let a caller copy the runs of several batches without waiting between them.

    Returns:
        list of K dicts ``{"size": [H, W], "counts": bytes}``.
    """
    return rles_from_runs(find_mask_runs(masks).to_host())


def decode_rle(rle: Dict[str, Any]) -> np.ndarray:
    """``np.ndarray[H, W]`` uint8 mask of a compressed RLE (``counts`` bytes or str)."""
    # The list form: pycocotools' single-dict path warns under NumPy 2 on every call.
    return mask_utils.decode([to_pycocotools(rle)])[:, :, 0]


def to_pycocotools(rle: Dict[str, Any]) -> Dict[str, Any]:
    """The RLE with ``counts`` as bytes, as pycocotools takes it."""
    counts = rle["counts"]
    return {
        "size": [int(v) for v in rle["size"]],
        "counts": counts.encode("ascii") if isinstance(counts, str) else counts,
    }


def to_json(rle: Dict[str, Any]) -> Dict[str, Any]:
    """The RLE with ``counts`` as str, as YouTube-VIS/COCO JSON files store it."""
    counts = rle["counts"]
    return {
        "size": [int(v) for v in rle["size"]],
        "counts": counts.decode("ascii") if isinstance(counts, bytes) else counts,
    }


def compressed_run_lengths(counts: Union[bytes, str]) -> np.ndarray:
    """Run lengths of a compressed RLE string, decoded as ``rleFrString`` (pycocotools
    ``maskApi.c``) reads it: 5 payload bits per character offset by 48, bit 0x20 continues the
    value, bit 0x10 of its last character is the sign, and from the fourth run on each value is
    a delta to the run two before. Used to check an RLE before pycocotools sees it.

    Args:
        counts (bytes or str): the ``counts`` field.
    Returns:
        ndarray[R] int64: the run lengths (alternating background / foreground).
    Raises:
        ValueError: characters out of range or a value cut short.
    """
    raw = counts.encode("ascii") if isinstance(counts, str) else bytes(counts)
    codes = np.frombuffer(raw, dtype=np.uint8).astype(np.int64) - 48  # [C]
    if codes.size == 0:
        return np.zeros(0, dtype=np.int64)
    if (codes < 0).any() or (codes > 63).any():
        raise ValueError("characters outside the RLE alphabet")
    continues = (codes & 0x20) != 0
    if continues[-1]:
        raise ValueError("the last run length is cut short")
    ends = np.flatnonzero(~continues)  # [R] last character of each value
    starts = np.concatenate(([0], ends[:-1] + 1))
    lengths = ends - starts + 1
    if lengths.max() > 12:  # 12 x 5 bits already exceed any mask's pixel count
        raise ValueError("a run length is too long")
    value_of_char = np.repeat(np.arange(ends.size), lengths)  # [C]
    shift = 5 * (np.arange(codes.size) - starts[value_of_char])
    values = np.zeros(ends.size, dtype=np.int64)
    np.add.at(values, value_of_char, (codes & 0x1F) << shift)
    negative = (codes[ends] & 0x10) != 0
    values[negative] |= -(1 << (5 * lengths[negative]))
    runs = values.copy()
    runs[1::2] = np.cumsum(values[1::2])  # odd runs: deltas from run 3 on
    runs[2::2] = np.cumsum(values[2::2])  # even runs: deltas from run 4 on (run 0 stands alone)
    return runs


def _check_runs(runs, height, width, where):
    if (runs < 0).any() or int(runs.sum()) != height * width:
        raise ValueError(
            f"{where}: malformed RLE: run lengths add up to {int(runs.sum())}"
            f"{' with negative runs' if (runs < 0).any() else ''}, expected "
            f"height x width = {height * width}"
        )


def checked_rle(segmentation: Any, height: int, width: int, where: str) -> Dict[str, Any]:
    """A dict RLE (compressed ``counts`` str/bytes, or uncompressed ``counts`` list) of an
    ``[height, width]`` mask, checked, as compressed RLE with bytes counts."""
    if (
        not isinstance(segmentation, dict)
        or "counts" not in segmentation
        or "size" not in segmentation
    ):
        raise ValueError(
            f"{where}: malformed RLE: expected {{'size': [h, w], 'counts': ...}}, "
            f"got {type(segmentation).__name__}"
        )
    size = segmentation["size"]
    if not isinstance(size, (list, tuple)) or list(size) != [height, width]:
        raise ValueError(
            f"{where}: RLE size {size} does not match the frame size "
            f"[height, width] = [{height}, {width}]"
        )
    counts = segmentation["counts"]
    if isinstance(counts, list):
        if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in counts):
            raise ValueError(f"{where}: malformed RLE: uncompressed counts must be integers")
        _check_runs(np.asarray(counts, dtype=np.int64), height, width, where)
        return mask_utils.frPyObjects({"size": [height, width], "counts": counts}, height, width)
    if not isinstance(counts, (str, bytes)):
        raise ValueError(
            f"{where}: malformed RLE: counts must be a string or a list, "
            f"got {type(counts).__name__}"
        )
    try:
        runs = compressed_run_lengths(counts)
    except (ValueError, UnicodeEncodeError) as error:
        raise ValueError(f"{where}: malformed RLE: {error}") from None
    _check_runs(runs, height, width, where)
    counts = counts.encode("ascii") if isinstance(counts, str) else bytes(counts)
    return {"size": [height, width], "counts": counts}


def polygons_to_rle(
    polygons: Any, height: int, width: int, where: str, *, skip_degenerate: bool = False
) -> Dict[str, Any]:
    """The union of COCO polygons (flat ``[x0, y0, x1, y1, ...]`` lists) on an
    ``[height, width]`` frame as compressed RLE.

    Every coordinate must be a finite number within one frame size of the frame (COCO polygons
    may overshoot the border slightly; pycocotools' rasteriser walks every edge, so a huge or NaN
    coordinate costs unbounded time and memory). ``skip_degenerate`` drops polygons of fewer
    than three points (as training readers do) instead of refusing them.
    """
    if not isinstance(polygons, list):
        raise ValueError(f"{where}: polygons must be a list of [x0, y0, x1, y1, ...] lists")
    kept = []
    for polygon in polygons:
        if (
            not isinstance(polygon, list)
            or len(polygon) % 2
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in polygon)
        ):
            raise ValueError(f"{where}: malformed polygon (need lists of x,y number pairs)")
        if len(polygon) < 6:
            if skip_degenerate:
                continue
            raise ValueError(f"{where}: malformed polygon (need lists of >= 3 x,y pairs)")
        xs, ys = polygon[0::2], polygon[1::2]
        if not all(math.isfinite(v) for v in polygon) or not (
            -width <= min(xs)
            and max(xs) <= 2 * width
            and -height <= min(ys)
            and max(ys) <= 2 * height
        ):
            raise ValueError(
                f"{where}: polygon coordinates must be finite and within one frame "
                f"size of the {width}x{height} frame (x in [{-width}, {2 * width}], "
                f"y in [{-height}, {2 * height}])"
            )
        kept.append(polygon)
    if not kept:
        return encode_mask(np.zeros((height, width), np.uint8))
    return mask_utils.merge(mask_utils.frPyObjects(kept, height, width))


def segmentation_to_rle(
    segmentation: Any, height: int, width: int, where: str, *, skip_degenerate: bool = False
) -> Optional[Dict[str, Any]]:
    """Compressed RLE from any COCO/YouTube-VIS segmentation form, or None for ``None``.

    Args:
        segmentation: dict RLE (compressed or uncompressed), list of polygons, or None.
        height, width: the frame size the annotation must describe.
        where: text naming the file and annotation, used in error messages.
        skip_degenerate: drop polygons of fewer than three points instead of refusing them.
    Raises:
        ValueError: unknown form, an RLE whose size is not (height, width) or whose runs do not
            cover it, a polygon with non-finite or far-off coordinates.
    """
    if segmentation is None:
        return None
    if isinstance(segmentation, dict):
        return checked_rle(segmentation, height, width, where)
    if isinstance(segmentation, list):
        return polygons_to_rle(segmentation, height, width, where, skip_degenerate=skip_degenerate)
    raise ValueError(
        f"{where}: segmentation must be an RLE dict, a polygon list or null, "
        f"got {type(segmentation).__name__}"
    )
