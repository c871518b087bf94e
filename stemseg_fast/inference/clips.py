"""The official clip schedule: which frames each clip the network sees holds, planned as the
frames arrive (a video's length is what its stream yields, learnt at its end), and how a clip's
repeated frames collapse."""

from typing import Callable, Iterator, List, Sequence, Tuple

import numpy as np


def _check_clip_arguments(clip_length, overlap):
    for value, what in ((clip_length, "clip_length"), (overlap, "overlap")):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
            raise TypeError(f"{what} must be an int, got {type(value).__name__}")
    if clip_length < 1:
        raise ValueError(f"clip_length must be >= 1, got {clip_length}")
    if not 0 <= overlap < clip_length:
        raise ValueError(f"overlap must be in [0, clip_length={clip_length}), got {overlap}")


def streamed_clip_schedule(
    has_frame: Callable[[int], bool], clip_length: int, overlap: int
) -> Iterator[Tuple[List[int], List[int]]]:
    """The official clip schedule (:func:`clip_schedule`) of a video whose length is learnt only
    when it ends: live streams, and files whose container misstates their frame count.

    Args:
        has_frame (callable): ``has_frame(i)`` reads the stream up to frame ``i`` if needed and
            says whether it exists; it is asked for at most one clip beyond the current one.
    Yields:
        ``(clip, finished)``: the clip's frame indices, and the frames no later clip contains
        (their last clip is this one), in increasing order.
    Raises:
        ValueError: the stream has no frame at all.
    """
    _check_clip_arguments(clip_length, overlap)
    if not has_frame(0):
        raise ValueError("the video has no frames")
    if not has_frame(clip_length - 1):
        num_frames = next(count for count in range(1, clip_length) if not has_frame(count))
        yield [0] * (clip_length - num_frames) + list(range(num_frames)), list(range(num_frames))
        return
    stride = clip_length - overlap
    start = 0
    while True:
        clip = list(range(start, start + clip_length))
        if has_frame(start + stride + clip_length - 1):  # the next regular clip fits
            yield clip, list(range(start, start + stride))
            start += stride
            continue
        # The stream ends before the next regular clip: find its length (< one stride more).
        num_frames = next(
            count
            for count in range(start + clip_length, start + stride + clip_length)
            if not has_frame(count)
        )
        if clip[-1] == num_frames - 1:
            yield clip, clip
            return
        tail_start = num_frames - clip_length  # one more clip, aligned to the end
        yield clip, list(range(start, tail_start))
        yield list(range(tail_start, num_frames)), list(range(tail_start, num_frames))
        return


def clip_schedule(num_frames: int, clip_length: int, overlap: int) -> List[List[int]]:
    """Frame indices of the clips the network sees, as the official ``get_subsequence_frames``.

    Clips start at 0, stride, 2·stride, ... (stride = clip_length - overlap) while a whole clip
    fits; if the last frame is not covered, one more clip aligned to the end of the video is
    added (it overlaps its predecessor by more than ``overlap``). A video shorter than a clip
    gives one clip left-padded by repeating frame 0; see :func:`clip_positions` for how the
    duplicates collapse.

    Examples (official presets: YouTube-VIS/KITTI-MOTS (8, 4), DAVIS (16, 6))::

        clip_schedule(12, 8, 4) -> [[0..7], [4..11]]
        clip_schedule(13, 8, 4) -> [[0..7], [4..11], [5..12]]
        clip_schedule(5, 8, 4)  -> [[0, 0, 0, 0, 1, 2, 3, 4]]

    Returns:
        list[list[int]], each of length ``clip_length``.
    """
    if not isinstance(num_frames, (int, np.integer)) or isinstance(num_frames, bool):
        raise TypeError(f"num_frames must be an int, got {type(num_frames).__name__}")
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    return [
        clip
        for clip, _ in streamed_clip_schedule(
            lambda index: index < num_frames, clip_length, overlap
        )
    ]


def clip_positions(clip: Sequence[int]) -> Tuple[List[int], List[int]]:
    """Collapse a clip's repeated frames: ``(frames, positions)`` with the distinct frame
    indices in increasing order and, for each, the position of its **last** occurrence in the
    clip. The official ``InferenceModel`` keeps the last occurrence's embeddings, precisions and
    seediness (``{t: out[:, i] for i, t in enumerate(clip)}``), while semantic logits of every
    occurrence enter the frame's average.

    Example: ``clip_positions([0, 0, 0, 1, 2]) -> ([0, 1, 2], [2, 3, 4])``.
    """
    last = {frame: position for position, frame in enumerate(clip)}
    frames = sorted(last)
    return frames, [last[frame] for frame in frames]
