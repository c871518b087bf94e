"""The official output mask path: a frame's track labels at clustering resolution -> one binary
mask per track at the source size -> one COCO RLE per track.

One-hot at clustering resolution -> x4 bilinear if clustering ran at stride 4 -> crop the
padding -> bilinear to the source frame size -> > 0.5 (official output generators). The masks
of K tracks are made together, at most :data:`MASK_CHUNK` at a time, which bounds the [K, H, W]
float buffers; the masks of a clip's frames are encoded together.
"""

from typing import Dict, List, Optional, Sequence, Tuple

import pycocotools.mask as mask_utils
import torch
import torch.nn.functional as F

from stemseg_fast.io.rle import find_mask_runs, rles_from_runs

from .host_waits import expected_host_wait

EMBEDDING_STRIDE = 4  # decoder outputs are at stride 4 of the padded input (reference §1.5)
MASK_CHUNK = 16
# Masks per device RLE call: each call syncs once (its run boundaries' count);
# 64 masks of a 640 x 1152 frame hold 47 MB of uint8 on the device.
ENCODE_BATCH = 64


def frame_masks(
    labels: torch.Tensor,
    track_ids: torch.Tensor,
    *,
    resized: Tuple[int, int],
    frame_size: Tuple[int, int],
    full_resolution: bool,
) -> torch.Tensor:
    """The masks of K tracks of one frame -> [K, W, H] uint8 (W before H, so the host copy is
    the column-major array pycocotools encodes).

    Args:
        labels: [H_c, W_c] int64 track labels at clustering resolution.
        resized: (height, width) of the resized frame inside the padded network input.
        full_resolution: clustering ran at the input resolution (else at stride 4).
    """
    # A bilinear resize to the size it has is the identity (weights 1 and 0), so frames the
    # resize rule left as they were (OVIS 640 x 1152, KITTI-MOTS) skip it; at full resolution
    # the masks are then the labels themselves, with no float map at all.
    same_size = tuple(resized) == tuple(frame_size)
    # The comparisons write [K, W, H] directly, reading transposed views: half the time of
    # writing [K, H, W] and transposing the copy on the CPU.
    masks = torch.empty(
        len(track_ids), frame_size[1], frame_size[0], dtype=torch.bool, device=labels.device
    )
    if full_resolution and same_size:
        crop = labels[: resized[0], : resized[1]]
        torch.eq(crop.t()[None], track_ids[:, None, None], out=masks)
        return masks.view(torch.uint8)
    one_hot = (labels[None] == track_ids[:, None, None]).float()[None]  # [1, K, H_c, W_c]
    if not full_resolution:
        one_hot = F.interpolate(
            one_hot, scale_factor=EMBEDDING_STRIDE, mode="bilinear", align_corners=False
        )
    one_hot = one_hot[:, :, : resized[0], : resized[1]]
    if not same_size:
        one_hot = F.interpolate(one_hot, size=frame_size, mode="bilinear", align_corners=False)
    torch.gt(one_hot[0].transpose(1, 2), 0.5, out=masks)
    return masks.view(torch.uint8)


class ClipMaskEncoding:
    """Per frame, {track id: COCO RLE at the source size} of the tracks it holds, started now
    and collected with :meth:`result`.

    Args:
        labels: [T, H_c, W_c] int64 track labels of T frames at clustering resolution.
        track_ids: per frame, the ids present in its labels, ascending (known on the host, so
            choosing the masks to make waits for nothing).
        side_stream: CUDA only: where :meth:`result` finds the run lengths and copies them
            back. Default: the current stream.

    On a GPU the constructor only queues the masks on the current stream; :meth:`result` then
    runs the device RLE (:func:`~stemseg_fast.io.rle.find_mask_runs`: run boundaries where the
    masks are, only they copied back, into pinned memory without waiting),
    :data:`ENCODE_BATCH` masks of any frames at a time, on ``side_stream`` once the masks are
    ready. Its waits (each batch's boundary count, then one for all the copies) wait for that
    stream alone, so work queued on the current stream in between (the next clip) keeps the
    device busy meanwhile. The masks wait on the device: at most a clip's
    frames x tracks of [H, W] uint8.

    On the CPU the constructor encodes each chunk with pycocotools in place, which is faster
    there (``benchmarks/host_path.py`` measures both), and holds no mask.
    """

    def __init__(
        self,
        labels: torch.Tensor,
        track_ids: Sequence[Sequence[int]],
        *,
        resized: Tuple[int, int],
        frame_size: Tuple[int, int],
        full_resolution: bool,
        side_stream: Optional["torch.cuda.Stream"] = None,
    ):
        if labels.dim() != 3 or labels.shape[0] != len(track_ids):
            raise ValueError(
                f"labels must have shape [T={len(track_ids)}, H, W], got {list(labels.shape)}"
            )
        self._rles = [{} for _ in track_ids]
        self._masks, self._owners = [], []  # GPU: [k, W, H] uint8 chunks, (frame, id) each
        self._side_stream, self._ready = side_stream, None
        owners = [(frame, track_id) for frame, ids in enumerate(track_ids) for track_id in ids]
        if not owners:
            return
        # One host-to-device copy of every id; each chunk takes a view of its own.
        all_ids = torch.tensor([track_id for _, track_id in owners]).to(
            labels.device, non_blocking=True
        )
        first = 0
        for frame, ids in enumerate(track_ids):
            for start in range(0, len(ids), MASK_CHUNK):
                chunk = all_ids[first + start : first + min(start + MASK_CHUNK, len(ids))]
                masks = frame_masks(
                    labels[frame],
                    chunk,
                    resized=resized,
                    frame_size=frame_size,
                    full_resolution=full_resolution,
                )
                chunk_owners = [(frame, track_id) for track_id in ids[start : start + MASK_CHUNK]]
                if masks.is_cuda:
                    self._masks.append(masks)
                    self._owners.extend(chunk_owners)
                else:
                    self._store(chunk_owners, mask_utils.encode(masks.numpy().transpose(2, 1, 0)))
            first += len(ids)
        if self._masks:
            self._ready = torch.cuda.Event()
            self._ready.record()

    def _store(self, owners, encoded):
        for (frame, track_id), rle in zip(owners, encoded):
            self._rles[frame][track_id] = rle

    def result(self) -> List[Dict[int, dict]]:
        """Per frame, {track id: RLE}; on a GPU, waits for the masks' run lengths."""
        if self._masks:
            stream = self._side_stream or torch.cuda.current_stream(self._masks[0].device)
            stream.wait_event(self._ready)
            # Where results leave the device: each batch's boundary count, then one wait for
            # all the batches' run boundaries, copied into pinned memory without waiting.
            with torch.cuda.stream(stream), expected_host_wait():
                copied, done = [], 0
                while self._masks:  # whole chunks, until ENCODE_BATCH masks or more
                    batch, size = [], 0
                    while self._masks and size < ENCODE_BATCH:
                        batch.append(self._masks.pop(0))
                        size += batch[-1].shape[0]
                    runs = find_mask_runs(torch.cat(batch).transpose(1, 2))
                    copied.append((self._owners[done : done + size], runs.to_host(pinned=True)))
                    done += size
                arrived = torch.cuda.Event()
                arrived.record(stream)
                arrived.synchronize()
            for owners, runs in copied:
                self._store(owners, rles_from_runs(runs))
        return self._rles


def encode_clip_masks(
    labels: torch.Tensor,
    track_ids: Sequence[Sequence[int]],
    *,
    resized: Tuple[int, int],
    frame_size: Tuple[int, int],
    full_resolution: bool,
) -> List[Dict[int, dict]]:
    """:class:`ClipMaskEncoding` collected at once: per frame of ``labels`` [T, H_c, W_c],
    {track id: COCO RLE at the source size} of ``track_ids[t]`` (ascending)."""
    return ClipMaskEncoding(
        labels, track_ids, resized=resized, frame_size=frame_size, full_resolution=full_resolution
    ).result()
