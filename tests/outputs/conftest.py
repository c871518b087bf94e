"""Shared inputs for the output writers: a synthetic clip and its ground truth as tracks."""
import cv2
import pytest

from stemseg_fast.inference.tracks import tracks_from_label_maps
from stemseg_fast.synthetic import CLASSES, synthetic_clip

FPS = 12.5


@pytest.fixture(scope="module")
def clip():
    return synthetic_clip(num_frames=6, height=40, width=56, num_objects=3, seed=2)


@pytest.fixture
def video_tracks(clip):
    return tracks_from_label_maps(
        clip.instance_ids, name="synthetic", background=-1,
        categories=dict(enumerate(clip.categories)), fps=FPS, video_id=3,
        category_names={index: name for index, (name, _) in enumerate(CLASSES, 1)})


@pytest.fixture
def write_video():
    def write(path, frames, fourcc="mp4v", fps=FPS):
        height, width = frames.shape[1:3]
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (width, height))
        assert writer.isOpened()
        for frame in frames:
            writer.write(frame)
        writer.release()
        return str(path)
    return write


@pytest.fixture
def write_frames():
    def write(folder, frames, extension="png"):
        folder.mkdir(parents=True, exist_ok=True)
        for index, frame in enumerate(frames):
            cv2.imwrite(str(folder / f"{index:05d}.{extension}"), frame)
        return str(folder)
    return write
