"""Overlay videos: frame count, fps, colours, codec fallback, atomic writes."""

import warnings

import cv2
import numpy as np
import pytest
from helpers import read_video, write_frames, write_video

from stemseg_fast.io.video import VideoInputError
from stemseg_fast.outputs import (
    DEFAULT_CODECS,
    draw_tracks,
    open_video_writer,
    track_colour,
    write_overlay_video,
)
from stemseg_fast.outputs import overlay as overlay_module
from stemseg_fast.tracks import Track, VideoTracks

REAL_VIDEO_WRITER = cv2.VideoWriter  # tests below patch cv2.VideoWriter itself


def test_overlay_video_opens_with_the_right_count_fps_and_size(tmp_path, clip, video_tracks):
    codec = write_overlay_video(tmp_path / "out.mp4", clip.frames, video_tracks)
    assert codec in DEFAULT_CODECS
    fps, frames = read_video(tmp_path / "out.mp4")
    assert fps == pytest.approx(video_tracks.fps) and len(frames) == 6
    assert frames[0].shape == (40, 56, 3)
    assert not list(tmp_path.glob(".*partial*"))


def test_fps_comes_from_the_argument_then_the_tracks_then_the_source(tmp_path, clip, video_tracks):
    write_overlay_video(tmp_path / "a.mp4", clip.frames, video_tracks, fps=5)
    assert read_video(tmp_path / "a.mp4")[0] == pytest.approx(5)
    video_tracks.fps = None
    source = write_video(tmp_path / "source.mp4", clip.frames, fps=8)
    write_overlay_video(tmp_path / "b.mp4", source, video_tracks)
    assert read_video(tmp_path / "b.mp4")[0] == pytest.approx(8)
    write_overlay_video(tmp_path / "c.mp4", clip.frames, video_tracks)  # nothing known: 30
    assert read_video(tmp_path / "c.mp4")[0] == pytest.approx(30)


def test_masks_are_drawn_in_a_colour_fixed_by_the_track(clip, video_tracks, monkeypatch):
    monkeypatch.setattr(overlay_module.cv2, "putText", lambda *args, **kwargs: None)  # labels
    monkeypatch.setattr(overlay_module.cv2, "rectangle", lambda *args, **kwargs: None)
    colours = [track_colour(track_id) for track_id in range(12)]
    assert len(set(colours)) == 12 and colours == [track_colour(i) for i in range(12)]
    background = np.full((6, 40, 56, 3), 100, np.uint8)
    track = video_tracks.tracks[1]  # present in every frame
    drawn = [draw_tracks(background[t], video_tracks, t, opacity=1.0) for t in range(6)]
    for t in range(6):
        mask = track.mask(t).astype(bool)
        inner = cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        inner &= ~np.isin(clip.instance_ids[t], [2])  # object 2 is painted over object 1
        assert inner.any()
        assert (drawn[t][inner] == track_colour(track.track_id)).all()
    untouched = np.ones((40, 56), bool)
    for t in range(6):
        untouched &= clip.instance_ids[t] < 0
    assert (drawn[0][untouched.nonzero()[0][-1], untouched.nonzero()[1][-1]] == 100).all()


def test_labels_name_the_class_and_number_tracks_from_one(video_tracks, monkeypatch):
    texts = []
    monkeypatch.setattr(
        overlay_module.cv2, "putText", lambda image, text, *args, **kwargs: texts.append(text)
    )
    draw_tracks(np.zeros((40, 56, 3), np.uint8), video_tracks, 0)
    names = {1: "disc", 2: "square", 3: "triangle"}
    expected = [
        f"{names[t.category_id]} {number}"
        for number, t in enumerate(video_tracks.tracks, 1)
        if t.area(0)
    ]
    assert sorted(texts) == sorted(expected)


def test_labels_sit_on_their_masks_and_never_cover_each_other(monkeypatch):
    masks = np.zeros((3, 1, 120, 160), np.uint8)
    masks[0, 0, 10:60, 10:70] = 1
    masks[1, 0, 12:58, 72:150] = 1  # a neighbour: centred labels would collide
    masks[2, 0, 80:115, 20:50] = 1
    tracks = [Track.from_masks(900 + k, masks[k], category_id=1) for k in range(3)]
    video_tracks = VideoTracks("v", tracks, (120, 160), 1, category_names={1: "a long name"})
    boxes, anchors = [], []
    rectangle = overlay_module.cv2.rectangle
    put_text = overlay_module.cv2.putText

    def spy_rectangle(image, corner, opposite, *args, **kwargs):
        boxes.append((*corner, *opposite))
        return rectangle(image, corner, opposite, *args, **kwargs)

    def spy_text(image, text, origin, *args, **kwargs):
        anchors.append(text)
        return put_text(image, text, origin, *args, **kwargs)

    monkeypatch.setattr(overlay_module.cv2, "rectangle", spy_rectangle)
    monkeypatch.setattr(overlay_module.cv2, "putText", spy_text)
    draw_tracks(np.zeros((120, 160, 3), np.uint8), video_tracks, 0)
    assert anchors == ["a long name 1", "a long name 2", "a long name 3"]
    for (left, top, right, bottom), mask in zip(boxes, masks[:, 0]):
        centre = mask[(top + bottom) // 2, (left + right) // 2]
        assert centre or mask[top:bottom, left:right].any()  # on (or over) its own mask
    for first in range(3):
        for second in range(first + 1, 3):
            a, b = boxes[first], boxes[second]
            assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1]


class RefusingWriter:
    """cv2.VideoWriter, except that the refused codecs never open."""

    def __init__(self, refused):
        self.refused = refused
        self.tried = []

    def __call__(self, path, fourcc, fps, size):
        codec = "".join(chr((fourcc >> (8 * i)) & 0xFF) for i in range(4))
        self.tried.append(codec)
        if codec in self.refused:
            return REAL_VIDEO_WRITER()  # never opened
        return REAL_VIDEO_WRITER(path, fourcc, fps, size)


def test_codec_fallback_really_happens_and_warns(tmp_path, clip, video_tracks, monkeypatch):
    writer = RefusingWriter({"avc1"})
    monkeypatch.setattr(overlay_module.cv2, "VideoWriter", writer)
    with pytest.warns(
        RuntimeWarning, match="codec 'avc1' is not available.*overlays are written with 'mp4v'"
    ):
        codec = write_overlay_video(tmp_path / "out.mp4", clip.frames, video_tracks)
    assert codec == "mp4v" and writer.tried == ["avc1", "mp4v"]
    assert len(read_video(tmp_path / "out.mp4")[1]) == 6


def test_the_first_codec_that_opens_is_used_without_a_warning(tmp_path, monkeypatch):
    writer = RefusingWriter(set())
    monkeypatch.setattr(overlay_module.cv2, "VideoWriter", writer)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        handle, codec = open_video_writer(str(tmp_path / "x.mp4"), 10, (8, 8), ("mp4v", "avc1"))
    handle.release()
    assert codec == "mp4v" and writer.tried == ["mp4v"]


def test_no_codec_opens(tmp_path, clip, video_tracks, monkeypatch):
    monkeypatch.setattr(overlay_module.cv2, "VideoWriter", RefusingWriter({"avc1", "mp4v"}))
    with pytest.raises(
        RuntimeError, match=r"cannot write .* with any of the codecs \['avc1', 'mp4v'\]"
    ):
        write_overlay_video(tmp_path / "out.mp4", clip.frames, video_tracks)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="4-character FourCC code, got 'h264x'"):
        open_video_writer(str(tmp_path / "y.mp4"), 10, (8, 8), ("h264x",))


def test_mismatched_frames_are_refused(tmp_path, clip, video_tracks):
    with pytest.raises(ValueError, match=r"tracks cover 6 frames but 'array' has 5"):
        write_overlay_video(tmp_path / "out.mp4", clip.frames[:5], video_tracks)
    longer = np.concatenate([clip.frames, clip.frames[:1]])
    with pytest.raises(ValueError, match=r"tracks cover 6 frames but 'array' has more"):
        write_overlay_video(tmp_path / "out.mp4", longer, video_tracks)
    with pytest.raises(ValueError, match=r"tracks are \[40, 56\] \(h, w\) but the frames"):
        write_overlay_video(tmp_path / "out.mp4", clip.frames[:, :20], video_tracks)
    assert list(tmp_path.iterdir()) == []


def test_a_failure_mid_write_leaves_no_file(tmp_path, clip, video_tracks):
    folder = write_frames(tmp_path / "frames", clip.frames)
    (tmp_path / "frames" / "00004.png").write_bytes(b"broken")
    out = tmp_path / "out"
    with pytest.raises(VideoInputError, match=r"00004\.png: OpenCV cannot decode"):
        write_overlay_video(out / "video.mp4", folder, video_tracks)
    assert list(out.iterdir()) == []
