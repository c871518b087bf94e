"""The official clip schedule, planned from a length and as frames arrive."""

import pytest

from stemseg_fast.inference.clips import clip_positions, clip_schedule, streamed_clip_schedule


def span(start, stop):
    return list(range(start, stop))


@pytest.mark.parametrize(
    "num_frames, clip_length, overlap, expected",
    [
        (8, 8, 4, [span(0, 8)]),
        (12, 8, 4, [span(0, 8), span(4, 12)]),
        (13, 8, 4, [span(0, 8), span(4, 12), span(5, 13)]),
        (15, 8, 4, [span(0, 8), span(4, 12), span(7, 15)]),
        (16, 8, 4, [span(0, 8), span(4, 12), span(8, 16)]),
        (5, 8, 4, [[0, 0, 0, 0, 1, 2, 3, 4]]),
        (1, 8, 4, [[0] * 8]),
        # DAVIS: T=16, overlap 6 -> stride 10; 50 frames: 0,10,20,30 fit, 34..49 added at the end
        (50, 16, 6, [span(0, 16), span(10, 26), span(20, 36), span(30, 46), span(34, 50)]),
        (36, 16, 6, [span(0, 16), span(10, 26), span(20, 36)]),
        (10, 4, 0, [span(0, 4), span(4, 8), span(6, 10)]),
        (3, 1, 0, [[0], [1], [2]]),
    ],
    ids=lambda value: str(value) if isinstance(value, int) else None,
)
def test_clip_schedule_worked_examples(num_frames, clip_length, overlap, expected):
    assert clip_schedule(num_frames, clip_length, overlap) == expected


def test_clip_schedule_covers_every_frame_and_overlaps_at_least_as_asked():
    for num_frames in range(1, 60):
        for clip_length, overlap in ((8, 4), (16, 6), (8, 0), (5, 4)):
            clips = clip_schedule(num_frames, clip_length, overlap)
            assert all(len(c) == clip_length for c in clips)
            assert set().union(*clips) == set(range(num_frames))
            for earlier, later in zip(clips, clips[1:]):
                assert len(set(earlier) & set(later)) >= overlap


@pytest.mark.parametrize("clip_length, overlap", [(8, 4), (16, 6), (4, 0), (5, 4), (1, 0)])
def test_the_schedule_planned_as_frames_arrive_equals_the_one_planned_from_the_length(
    clip_length, overlap
):
    for num_frames in range(1, 4 * clip_length + 3):
        asked = []

        def has_frame(index, num_frames=num_frames):
            asked.append(index)
            return index < num_frames

        planned = []
        for clip, finished in streamed_clip_schedule(has_frame, clip_length, overlap):
            # It reads no further than the end of the next regular clip.
            assert max(asked) <= min(clip) + (clip_length - overlap) + clip_length - 1
            planned.append((clip, finished))
        clips = [clip for clip, _ in planned]
        assert clips == clip_schedule(num_frames, clip_length, overlap)
        last_clip_of = {frame: index for index, clip in enumerate(clips) for frame in clip}
        for index, (_, finished) in enumerate(planned):
            assert finished == sorted(f for f, last in last_clip_of.items() if last == index)


def test_a_stream_without_frames_is_an_error():
    with pytest.raises(ValueError, match="the video has no frames"):
        list(streamed_clip_schedule(lambda index: False, 8, 4))


@pytest.mark.parametrize(
    "args, error, match",
    [
        ((0, 8, 4), ValueError, "num_frames must be >= 1, got 0"),
        ((10, 0, 0), ValueError, "clip_length must be >= 1"),
        ((10, 8, 8), ValueError, r"overlap must be in \[0, clip_length=8\), got 8"),
        ((10, 8, -1), ValueError, "overlap must be in"),
        ((10.0, 8, 4), TypeError, "num_frames must be an int, got float"),
    ],
)
def test_clip_schedule_rejects_bad_arguments(args, error, match):
    with pytest.raises(error, match=match):
        clip_schedule(*args)


def test_clip_positions_keep_the_last_occurrence():
    assert clip_positions([0, 0, 0, 1, 2]) == ([0, 1, 2], [2, 3, 4])
    assert clip_positions(span(4, 8)) == (span(4, 8), span(0, 4))
    frames, positions = clip_positions(clip_schedule(3, 8, 4)[0])
    assert frames == [0, 1, 2] and positions == [5, 6, 7]
