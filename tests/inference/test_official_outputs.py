"""Full-resolution masks, selection and class votes of every benchmark rule against the official
output generators (tests/official_stemseg.py: ``YoutubeVISOutputGenerator``,
``DavisOutputGenerator``, ``KittiMOTSOutputGenerator``).

The project's pipeline runs on a video whose frames (50 x 70) need the resize rule (-> 64 x 90)
and padding (-> 64 x 96), with an oracle network (one embedding point per object, random class
logits, so that the background channel wins the per-voxel argmax on part of every object). The
stitched labels of every final frame and its averaged class logits are recorded on their way to
the output stage; the official generators then rebuild masks, categories, scores and track ids
from exactly those, and everything the project writes must equal what they write.
"""

import dataclasses
from collections import defaultdict

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from official_stemseg import official_davis, official_kitti_mots, official_youtube_vis
from test_predictor import OracleNetwork
from torch import nn

from stemseg_fast.inference import pipeline
from stemseg_fast.inference.predictor import Predictor
from stemseg_fast.io import kitti_mots_detections
from stemseg_fast.io.rle import decode_rle
from stemseg_fast.model import PRESETS
from stemseg_fast.synthetic import synthetic_clip

FRAME_SIZE = (50, 70)  # -> resized 64 x 90 -> padded 64 x 96 with the tiny preset's 64 / 96
RESIZED, PADDED = (64, 90), (64, 96)
NUM_CLASSES = 3  # background, car, pedestrian: every rule applies, KITTI-MOTS included

pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


class OracleWithRandomClasses(OracleNetwork):
    """tests/inference/test_predictor.py's oracle (frames as their index, one embedding point
    per object), with the foreground logit +8 on objects and class logits drawn per frame and
    voxel."""

    def __init__(self, ids_at_stride_4, class_logits, config):
        nn.Module.__init__(self)
        self.ids = ids_at_stride_4  # [T, h, w]
        self.class_logits = class_logits  # [T, C, h, w]
        self.config = config
        self.frames_seen = 0

    def heads(self, volumes):
        frames = volumes[0][0, 0, :, 0, 0].long()
        ids = self.ids[frames]
        semantic = torch.cat(
            [self.class_logits[frames].transpose(0, 1), torch.where(ids >= 0, 8.0, -8.0)[None]]
        )
        return self.outputs(ids, 3, semantic)


def oracle_ids(instance_ids):
    """The frames' object ids as the network sees them: resized (nearest) to the network input,
    padded with -1, sampled at the centre of every stride-4 cell."""
    ids = torch.from_numpy(instance_ids)[:, None].float()
    ids = F.interpolate(ids, size=RESIZED, mode="nearest")[:, 0].long()
    ids = F.pad(ids, (0, PADDED[1] - RESIZED[1], 0, PADDED[0] - RESIZED[0]), value=-1)
    return ids[:, 2::4, 2::4]


def run_and_record(full_resolution, generator, monkeypatch, num_frames=9, make_logits=None):
    """Run the pipeline; class logits [T, C, h, w] from ``make_logits(shape)`` or random."""
    clip = synthetic_clip(
        num_frames=num_frames, height=FRAME_SIZE[0], width=FRAME_SIZE[1], num_objects=3, seed=4
    )
    config = dataclasses.replace(
        PRESETS["tiny"],
        num_classes=NUM_CLASSES,
        inference=dataclasses.replace(
            PRESETS["tiny"].inference, cluster_at_full_resolution=full_resolution
        ),
    )
    ids = oracle_ids(clip.instance_ids)
    shape = (num_frames, NUM_CLASSES, *ids.shape[1:])
    logits = make_logits(shape) if make_logits else torch.randn(shape, generator=generator)
    network = OracleWithRandomClasses(ids, logits, config)
    recorded = {}
    emit = pipeline.VideoRun._emit_frame

    def recording_emit(run, frame, labels):
        class_logits = run.class_logits.get(frame)
        recorded[frame] = (labels.clone(), run._upsample_frame(class_logits).clone())
        return emit(run, frame, labels)

    monkeypatch.setattr(pipeline.VideoRun, "_emit_frame", recording_emit)
    prediction = Predictor(network, device="cpu", backend="reference").predict(
        clip.frames, video_id=3
    )
    frames = sorted(recorded)
    assert frames == list(range(num_frames))
    labels = [recorded[t][0] for t in frames]
    class_logits = torch.stack([recorded[t][1] for t in frames])  # [T, C, H_c, W_c]
    return prediction, labels, class_logits


def official_inputs(labels):
    """What the official TrackContainer hands the generators: per frame the voxel coordinates
    and labels, and per-track pixel counts and lifetimes in its dict insertion order (frame by
    frame, labels ascending)."""
    idxes, frame_labels = [], []
    counts, first, last = defaultdict(int), {}, {}
    for t, frame in enumerate(labels):
        ys, xs = torch.nonzero(frame >= 0, as_tuple=True)
        idxes.append((ys, xs))
        frame_labels.append(frame[ys, xs])
        for label in torch.unique(frame[ys, xs]).tolist():
            counts[label] += int((frame == label).sum())
            first.setdefault(label, t)
            last[label] = t
    lifetimes = {label: last[label] - first[label] for label in counts}
    return idxes, frame_labels, dict(counts), lifetimes


def official_options(full_resolution):
    return dict(upscaled_inputs=full_resolution, min_dim=64, max_dim=96)


@pytest.mark.parametrize("max_tracks", [10, 2])
@pytest.mark.parametrize("full_resolution", [True, False], ids=["fullres", "stride4"])
def test_youtube_vis_rule_equals_the_official_generator(
    full_resolution, max_tracks, rng, monkeypatch
):
    prediction, labels, class_logits = run_and_record(full_resolution, rng, monkeypatch)
    idxes, frame_labels, counts, lifetimes = official_inputs(labels)
    expected = official_youtube_vis(
        idxes,
        frame_labels,
        counts,
        lifetimes,
        class_logits,
        labels[0].shape,
        FRAME_SIZE,
        max_tracks=max_tracks,
        **official_options(full_resolution),
    )
    tracks = prediction.select("youtube_vis", max_tracks=max_tracks).tracks
    assert [t.track_id for t in tracks] == [e["track"] for e in expected]
    assert len(expected) >= 2
    for track, want in zip(tracks, expected):
        assert track.category_id == want["category_id"], track.track_id
        assert track.score == pytest.approx(want["score"], rel=1e-12)
        got = np.stack([track.mask(t) for t in range(len(labels))]).astype(bool)
        np.testing.assert_array_equal(got, want["masks"].numpy(), err_msg=str(track.track_id))


@pytest.mark.parametrize("max_tracks", [20, 2])
def test_davis_rule_equals_the_official_generator(max_tracks, rng, monkeypatch):
    prediction, labels, _ = run_and_record(False, rng, monkeypatch)
    idxes, frame_labels, _, lifetimes = official_inputs(labels)
    maps, keep = official_davis(
        idxes,
        frame_labels,
        lifetimes,
        labels[0].shape,
        FRAME_SIZE,
        max_tracks=max_tracks,
        **official_options(False),
    )
    video_tracks = prediction.select("davis", max_tracks=max_tracks)
    assert [t.track_id for t in video_tracks.tracks] == keep
    for t in range(len(labels)):
        np.testing.assert_array_equal(
            video_tracks.label_map(t), maps[t].numpy(), err_msg=f"frame {t}"
        )


@pytest.mark.parametrize("max_tracks", [1000, 2])
def test_kitti_mots_rule_equals_the_official_generator(max_tracks, rng, monkeypatch):
    prediction, labels, class_logits = run_and_record(False, rng, monkeypatch)
    idxes, frame_labels, counts, lifetimes = official_inputs(labels)
    argmax = class_logits.argmax(dim=1)  # official "argmax" output type: background included
    assert (argmax == 0).any() and (argmax > 0).any()
    expected = official_kitti_mots(
        idxes,
        frame_labels,
        counts,
        lifetimes,
        argmax,
        labels[0].shape,
        FRAME_SIZE,
        max_tracks=max_tracks,
        **official_options(False),
    )
    detections = kitti_mots_detections(prediction.select("kitti_mots", max_tracks=max_tracks))
    got = sorted((d.frame, d.track_id, d.class_id) for d in detections)
    assert got == sorted((frame, track_id, class_id) for frame, track_id, class_id, _ in expected)
    masks = {(d.frame, d.track_id): decode_rle(d.rle) for d in detections}
    for frame, track_id, _, mask in expected:
        np.testing.assert_array_equal(masks[(frame, track_id)], mask.numpy().astype(np.uint8))


def background_first_pedestrian_second(shape):
    logits = torch.zeros(shape)
    logits[:, 0], logits[:, 2] = 3.0, 2.0
    logits[:, 1, ::3, ::3] = 4.0  # car wins outright on a sparse grid of voxels
    return logits


def test_kitti_class_vote_counts_the_background_channel(monkeypatch):
    """Constructed: the background logit is highest and 'pedestrian' second on every voxel,
    except a sparse grid where 'car' wins outright. The official vote (argmax with the
    background, background votes dropped) says car for every track; a vote that ignored the
    background channel would say pedestrian."""
    prediction, labels, class_logits = run_and_record(
        False, None, monkeypatch, make_logits=background_first_pedestrian_second
    )
    idxes, frame_labels, counts, lifetimes = official_inputs(labels)
    expected = official_kitti_mots(
        idxes,
        frame_labels,
        counts,
        lifetimes,
        class_logits.argmax(1),
        labels[0].shape,
        FRAME_SIZE,
        **official_options(False),
    )
    assert {class_id for _, _, class_id, _ in expected} == {1}
    tracks = prediction.select("kitti_mots").tracks
    assert len(tracks) >= 2 and {track.category_id for track in tracks} == {1}
    without_background = class_logits[:, 1:].argmax(1) + 1
    assert (without_background == 2).sum() > (without_background == 1).sum()
