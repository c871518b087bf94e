"""Frame sources and input expansion."""

import json
import os

import cv2
import numpy as np
import pytest
import torch
from helpers import VIDEO_FPS as FPS
from helpers import write_frames, write_video

from stemseg_fast.io.video import (
    ArraySource,
    ImageFilesSource,
    VideoFileSource,
    VideoInputError,
    VideoLengthWarning,
    annotation_videos,
    expand_inputs,
    folder_source,
    open_video,
)
from stemseg_fast.synthetic import synthetic_clip


@pytest.fixture(scope="module")
def clip():
    return synthetic_clip(num_frames=6, height=32, width=48, num_objects=2, seed=5)


# ---------------------------------------------------------------------------------------------
# sources


def test_video_file_source_reads_metadata_and_streams_frames(tmp_path, clip):
    source = VideoFileSource(write_video(tmp_path / "walk.mp4", clip.frames))
    assert source.name == "walk"
    assert source.num_frames == 6
    assert source.frame_size == (32, 48)
    assert source.fps == pytest.approx(FPS)
    frames = list(source)
    assert len(frames) == 6 and all(f.shape == (32, 48, 3) and f.dtype == np.uint8 for f in frames)
    # lossy codec: close to the drawn frames, and frame order kept (each frame nearest its own)
    errors = np.array([[np.abs(f.astype(int) - g).mean() for g in clip.frames] for f in frames])
    assert np.array_equal(errors.argmin(axis=1), np.arange(6))
    assert len(list(source)) == 6  # iterates again


def test_folder_source_is_exact_and_naturally_sorted(tmp_path, clip):
    names = [f"frame_{index}.png" for index in (0, 1, 2, 10, 11, 20)]
    folder = write_frames(tmp_path / "seq", clip.frames, names)
    (tmp_path / "seq" / "notes.txt").write_text("not a frame")
    source = folder_source(folder)
    assert source.name == "seq" and source.num_frames == 6 and source.fps is None
    assert [os.path.basename(p) for p in source.paths] == names
    assert source.frame_size == (32, 48)
    assert np.array_equal(np.stack(list(source)), clip.frames)


def test_array_source_bgr_default_rgb_option_and_tensors(clip):
    assert np.array_equal(np.stack(list(ArraySource(clip.frames))), clip.frames)
    rgb = clip.frames[..., ::-1]
    assert np.array_equal(np.stack(list(ArraySource(rgb, rgb=True))), clip.frames)
    tensor = torch.from_numpy(clip.frames.copy())
    assert np.array_equal(np.stack(list(open_video(tensor, fps=24))), clip.frames)
    assert open_video(tensor, fps=24).fps == 24
    assert ArraySource(list(clip.frames)).frame_size == (32, 48)


@pytest.mark.parametrize(
    "frames, match",
    [
        (np.zeros((4, 8, 8), np.uint8), r"shape \[T, H, W, 3\], got \[4, 8, 8\]"),
        (np.zeros((2, 8, 8, 4), np.uint8), r"shape \[T, H, W, 3\]"),
        (np.zeros((2, 8, 8, 3), np.float32), "must be uint8.*float32"),
        (torch.zeros(2, 8, 8, 3), "must be uint8.*torch.float32"),
        (np.zeros((0, 8, 8, 3), np.uint8), "at least one frame"),
        ([], "at least one frame"),
    ],
    ids=["3d", "4-channels", "float-array", "float-tensor", "zero-frames", "empty-list"],
)
def test_array_source_rejects_bad_arrays(frames, match):
    with pytest.raises(VideoInputError, match=match):
        ArraySource(frames)


def test_frames_of_another_size_are_named_when_met(tmp_path, clip):
    frames = [clip.frames[0], clip.frames[1], np.zeros((16, 48, 3), np.uint8)]
    source = ArraySource(frames)
    iterator = iter(source)
    next(iterator), next(iterator)  # streamed: the first two come out before the bad one
    with pytest.raises(VideoInputError, match=r"frame 2 is 48x16.*48x32"):
        next(iterator)
    folder = write_frames(tmp_path / "mixed", frames)
    with pytest.raises(VideoInputError, match=r"frame file .*00002\.png is 48x16"):
        list(folder_source(folder))


def test_undecodable_frame_file_is_named(tmp_path, clip):
    folder = write_frames(tmp_path / "seq", clip.frames[:3])
    (tmp_path / "seq" / "00001.png").write_bytes(b"not a png")
    with pytest.raises(VideoInputError, match=r"00001\.png: OpenCV cannot decode"):
        list(folder_source(folder))


def test_missing_and_empty_inputs(tmp_path):
    with pytest.raises(FileNotFoundError, match="video file .*nope.mp4 does not exist"):
        VideoFileSource(str(tmp_path / "nope.mp4"))
    with pytest.raises(FileNotFoundError, match="nope does not exist"):
        folder_source(str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(VideoInputError, match="empty holds no image files"):
        folder_source(str(tmp_path / "empty"))
    with pytest.raises(VideoInputError, match="has no frame files"):
        ImageFilesSource([], name="x")


def test_corrupt_video_file(tmp_path):
    path = tmp_path / "broken.mp4"
    path.write_bytes(os.urandom(2000))
    source = VideoFileSource(str(path))  # lazy: opening costs nothing until needed
    with pytest.raises(VideoInputError, match="broken.mp4: OpenCV cannot (open|decode)"):
        source.num_frames  # noqa: B018 (the property raises)


def test_a_truncated_video_yields_every_decodable_frame_and_warns_once(tmp_path):
    frames = synthetic_clip(num_frames=20, height=48, width=64, seed=1).frames
    full = write_video(tmp_path / "full.avi", frames, fourcc="MJPG")
    data = open(full, "rb").read()
    (tmp_path / "cut.avi").write_bytes(data[: len(data) // 2])
    source = VideoFileSource(str(tmp_path / "cut.avi"))
    assert source.num_frames == 20  # what the container announces
    with pytest.warns(
        VideoLengthWarning,
        match=r"cut.avi: its container announces 20 frames, "
        r"(\d+) decoded; using the \1",
    ) as caught:
        decoded = list(source)
    assert len(caught) == 1 and 0 < len(decoded) < 20
    np.testing.assert_array_equal(decoded[0], cv2.VideoCapture(full).read()[1])


# ---------------------------------------------------------------------------------------------
# expand_inputs


def test_expand_inputs_over_every_kind(tmp_path, clip):
    video = write_video(tmp_path / "a.mp4", clip.frames)
    frames = write_frames(tmp_path / "b", clip.frames)
    videos = tmp_path / "many"
    videos.mkdir()
    write_video(videos / "c.mp4", clip.frames)
    write_video(videos / "d.avi", clip.frames, fourcc="MJPG")
    write_frames(videos / "e", clip.frames[:2])
    (videos / "readme.txt").write_text("ignored")
    globbed = tmp_path / "glob"
    globbed.mkdir()
    write_video(globbed / "f1.mp4", clip.frames)
    write_video(globbed / "f2.mp4", clip.frames)
    sources = expand_inputs([video, frames, str(videos), str(globbed / "f*.mp4")])
    assert [s.name for s in sources] == ["a", "b", "c", "d", "e", "f1", "f2"]
    assert [type(s).__name__ for s in sources] == [
        "VideoFileSource",
        "ImageFilesSource",
        "VideoFileSource",
        "VideoFileSource",
        "ImageFilesSource",
        "VideoFileSource",
        "VideoFileSource",
    ]
    assert sources[4].num_frames == 2
    assert [s.name for s in expand_inputs(video)] == ["a"]


def test_expand_inputs_reads_an_annotation_file(tmp_path, clip):
    root = tmp_path / "valid" / "JPEGImages"
    write_frames(root / "vid_a", clip.frames[:3], ["00000.jpg", "00005.jpg", "00010.jpg"])
    write_frames(root / "vid_b", clip.frames[:2], ["00000.jpg", "00005.jpg"])
    annotation = {
        "videos": [
            {"id": 7, "file_names": ["vid_a/00000.jpg", "vid_a/00005.jpg", "vid_a/00010.jpg"]},
            {"id": 9, "file_names": ["vid_b/00000.jpg", "vid_b/00005.jpg"]},
        ],
        "categories": [{"id": 1, "name": "disc"}],
    }
    json_path = tmp_path / "valid" / "valid.json"
    json_path.write_text(json.dumps(annotation))
    sources = expand_inputs([str(json_path)])  # JPEGImages/ beside the file is the default root
    assert [(s.name, s.video_id, s.num_frames) for s in sources] == [
        ("vid_a", 7, 3),
        ("vid_b", 9, 2),
    ]
    assert np.stack(list(sources[1])).shape == (2, 32, 48, 3)
    elsewhere = annotation_videos(str(json_path), image_root=str(root))
    assert elsewhere[0].paths == sources[0].paths


@pytest.mark.parametrize(
    "content, match",
    [
        ("{not json", "not valid JSON"),
        ('{"annotations": []}', "no 'videos' list"),
        ('{"videos": [{"id": 1, "file_names": []}]}', r"videos\[0\] needs 'id'"),
    ],
    ids=["invalid-json", "no-videos", "no-file-names"],
)
def test_bad_annotation_files(tmp_path, content, match):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(VideoInputError, match=match):
        expand_inputs([str(path)])


def test_expand_inputs_errors(tmp_path, clip):
    with pytest.raises(FileNotFoundError, match="matches nothing"):
        expand_inputs([str(tmp_path / "*.mp4")])
    with pytest.raises(FileNotFoundError, match="missing.mp4 does not exist"):
        expand_inputs([str(tmp_path / "missing.mp4")])
    (tmp_path / "nothing").mkdir()
    (tmp_path / "nothing" / "a.txt").write_text("x")
    with pytest.raises(VideoInputError, match="holds no frames, video files"):
        expand_inputs([str(tmp_path / "nothing")])
    first = write_video(tmp_path / "same.mp4", clip.frames)
    (tmp_path / "other").mkdir()
    second = write_video(tmp_path / "other" / "same.mp4", clip.frames)
    with pytest.raises(VideoInputError, match="share the name 'same'"):
        expand_inputs([first, second])
