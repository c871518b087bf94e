"""Shared inputs for the output writers: a synthetic clip and its ground truth as tracks."""
import pytest
from helpers import VIDEO_FPS as FPS

from stemseg_fast.inference.tracks import tracks_from_label_maps
from stemseg_fast.synthetic import CLASSES, synthetic_clip



@pytest.fixture(scope="module")
def clip():
    return synthetic_clip(num_frames=6, height=40, width=56, num_objects=3, seed=2)


@pytest.fixture
def video_tracks(clip):
    return tracks_from_label_maps(
        clip.instance_ids, name="synthetic", background=-1,
        categories=dict(enumerate(clip.categories)), fps=FPS, video_id=3,
        category_names={index: name for index, (name, _) in enumerate(CLASSES, 1)})


