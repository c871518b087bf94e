"""Predictor: the streaming pipeline against ground truth through an "oracle" network, short
videos, bounded memory on long streams, backend parity, checkpoint loading and input kinds."""

import dataclasses
import importlib
import math

import numpy as np
import pytest
import torch
from torch import nn

import stemseg_fast
from stemseg_fast.inference.predictor import Predictor, load_model
from stemseg_fast.io.rle import decode_rle
from stemseg_fast.model import (
    PRESETS,
    CheckpointMismatchError,
    STEmSeg,
    STEmSegOutput,
    build_stemseg,
    save_checkpoint,
)
from stemseg_fast.synthetic import synthetic_clip

TINY = PRESETS["tiny"]  # clips of 4 overlapping by 2, inputs 64 x 96 (no resize for 64 x 96)
ORACLE_SEED = 5  # every object has >= 11 voxels at stride 4 in each of 11 frames

pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


def tiny_config(**inference):
    return dataclasses.replace(TINY, inference=dataclasses.replace(TINY.inference, **inference))


class OracleNetwork(nn.Module):
    """What a perfect network would emit for a synthetic clip, through the real pipeline.

    The "backbone" turns each frame into its index (frames arrive in order), the "heads" look up
    the ground-truth ids of the clip's frames at stride 4 and emit, per object k, one embedding
    point far from the others (precision 10, the free dims' 11.1), the origin on the
    background, seediness 0.95 on objects and 0.05 elsewhere, and semantic logits saying
    foreground + the object's class.
    """

    def __init__(self, instance_ids, categories, config):
        super().__init__()
        self.ids = torch.from_numpy(instance_ids[:, 2::4, 2::4])  # [T, h, w] centre samples
        self.categories = torch.tensor(categories)
        self.config = config
        self.frames_seen = 0
        self.clip_frames = []

    def backbone_features(self, images):
        count, _, height, width = images.shape
        index = torch.arange(self.frames_seen, self.frames_seen + count, dtype=torch.float32)
        self.frames_seen += count
        return [index.view(count, 1, 1, 1).expand(count, 1, height // 4, width // 4)]

    stack_clip = staticmethod(STEmSeg.stack_clip)

    def heads(self, volumes):
        frames = volumes[0][0, 0, :, 0, 0].long()  # [T]
        self.clip_frames.append(frames.tolist())
        ids = self.ids[frames]  # [T, h, w]
        objects = ids >= 0
        num_channels = self.config.num_classes + 1
        semantic = torch.full((num_channels, *ids.shape), -8.0)
        category = torch.where(objects, self.categories[ids.clamp(min=0)], 0)
        semantic.scatter_(0, category[None], 8.0)
        semantic[-1] = torch.where(objects, 8.0, -8.0)
        return self.outputs(ids, len(self.categories), semantic)

    @staticmethod
    def outputs(ids, num_objects, semantic):
        """The heads' outputs for the object ids [T, h, w] of a clip: object k's embedding
        point on two circles at angle 2 pi k / num_objects, the origin elsewhere; precision
        10; seediness 0.95 on objects, 0.05 elsewhere; ``semantic`` [C + 1, T, h, w] as given."""
        objects = ids >= 0
        angle = 2 * math.pi * ids.clamp(min=0).float() / num_objects
        embeddings = torch.stack(
            [
                0.5 * torch.cos(angle),
                0.5 * torch.sin(angle),
                0.9 * torch.cos(angle),
                0.9 * torch.sin(angle),
            ]
        )
        embeddings = torch.where(objects, embeddings, torch.zeros_like(embeddings))
        log_precisions = torch.zeros((2, *ids.shape))  # precision 10
        seediness = torch.where(objects, 0.95, 0.05)[None]
        return STEmSegOutput(
            embeddings[None], log_precisions[None], seediness[None], semantic[None]
        )


def oracle_predictor(clip, **inference):
    config = dataclasses.replace(tiny_config(**inference), num_classes=4)  # bg + 3 shapes
    network = OracleNetwork(clip.instance_ids, clip.categories, config)
    return Predictor(network, device="cpu", backend="reference"), network


def ideal_masks(instance_ids, index):
    """[T, H, W] bool: object ``index`` as the oracle sees it (stride 4) through the official
    mask path (x4 bilinear, > 0.5; 64 x 96 frames need no crop or resize): the best any
    clustering can give."""
    one_hot = torch.from_numpy(instance_ids[:, 2::4, 2::4] == index).float()[:, None]
    upsampled = torch.nn.functional.interpolate(
        one_hot, scale_factor=4, mode="bilinear", align_corners=False
    )
    return (upsampled[:, 0] > 0.5).numpy()


def video_iou(track, ground_truth):
    """IoU over the whole video of a track's masks and a [T, H, W] bool ground truth."""
    masks = np.stack([track.mask(t) for t in range(len(ground_truth))]).astype(bool)
    return (masks & ground_truth).sum() / max((masks | ground_truth).sum(), 1)


@pytest.mark.parametrize("full_resolution", [False, True], ids=["stride4", "fullres"])
def test_oracle_embeddings_give_one_track_per_object_across_clips(full_resolution):
    clip = synthetic_clip(num_frames=11, height=64, width=96, num_objects=3, seed=ORACLE_SEED)
    predictor, network = oracle_predictor(clip, cluster_at_full_resolution=full_resolution)
    video_tracks = predictor(clip.frames, video_id=7)
    # 11 frames, clips of 4 by 2: four regular clips plus one aligned to the end
    assert [frames[0] for frames in network.clip_frames] == [0, 2, 4, 6, 7]
    assert network.frames_seen == 11  # the backbone saw each frame once
    # Upsampled maps blend neighbouring objects at their borders, where a few voxels can seed
    # clusters of their own: tiny tracks, allowed at full resolution only.
    tracks = [track for track in video_tracks.tracks if track.score > 0.05]
    assert len(tracks) == 3
    assert len(video_tracks.tracks) == 3 or full_resolution
    matched = set()
    for index, category in enumerate(clip.categories):
        ideal = ideal_masks(clip.instance_ids, index)
        ious = [video_iou(track, ideal) for track in tracks]
        best = int(np.argmax(ious))
        # at stride 4 the masks are exactly the ideal ones; clustering upsampled embeddings
        # moves object borders a little
        assert ious[best] == 1.0 if not full_resolution else ious[best] > 0.85, (index, ious)
        assert video_iou(tracks[best], clip.instance_ids == index) > 0.7
        track = tracks[best]
        assert track.category_id == category
        assert track.frames == tuple(range(11))  # one identity over every clip
        matched.add(best)
    assert len(matched) == 3
    scores = sorted(track.score for track in tracks)
    assert scores[-1] == 1.0 and 0 < scores[0] < 1
    assert video_tracks.video_id == 7 and video_tracks.frame_size == (64, 96)


def test_oracle_comparison_can_fail():
    """A network that swaps two objects' embeddings halfway breaks their tracks: the test above
    would notice."""
    clip = synthetic_clip(num_frames=11, height=64, width=96, num_objects=3, seed=ORACLE_SEED)
    swapped = clip.instance_ids.copy()
    swapped[6:][clip.instance_ids[6:] == 0] = 1
    swapped[6:][clip.instance_ids[6:] == 1] = 0
    predictor, _ = oracle_predictor(dataclasses.replace(clip, instance_ids=swapped))
    video_tracks = predictor(clip.frames, video_id=1)
    ious = [video_iou(track, ideal_masks(clip.instance_ids, 0)) for track in video_tracks.tracks]
    assert max(ious) < 0.8


def test_short_video_is_left_padded_and_collapsed():
    clip = synthetic_clip(num_frames=3, height=64, width=96, num_objects=3, seed=ORACLE_SEED)
    predictor, network = oracle_predictor(clip)
    prediction = predictor.predict(clip.frames, video_id=1)
    assert network.clip_frames == [[0, 0, 1, 2]]  # official left padding with frame 0
    assert network.frames_seen == 3
    video_tracks = prediction.select()
    assert video_tracks.num_frames == 3 and len(video_tracks.tracks) == 3
    for index in range(3):
        ideal = ideal_masks(clip.instance_ids, index)
        assert max(video_iou(track, ideal) for track in video_tracks.tracks) == 1.0


def test_semantic_average_counts_every_occurrence_of_a_padded_frame():
    """Frame 0 appears twice in a padded clip of 3 frames; with class logits +8 for the true
    class in one occurrence and -8 in the other, only an average over both occurrences makes
    the class margin vanish; a last-occurrence rule would keep it."""
    clip = synthetic_clip(num_frames=1, height=64, width=96, num_objects=1, seed=ORACLE_SEED)
    config = dataclasses.replace(tiny_config(clip_length=2, clip_overlap=1), num_classes=4)
    network = OracleNetwork(clip.instance_ids, clip.categories, config)
    heads = network.heads

    def heads_with_conflicting_classes(volumes):
        output = heads(volumes)
        semantic = output.semantic_logits.clone()
        semantic[0, 1:-1, 0] = -semantic[0, 1:-1, 0]  # first occurrence: classes flipped
        return output._replace(semantic_logits=semantic)

    network.heads = heads_with_conflicting_classes
    predictor = Predictor(network, device="cpu", backend="reference")
    prediction = predictor.predict(clip.frames, video_id=1)
    sums = prediction.class_logit_sums  # [1 track, 5 channels]
    assert sums.shape[0] == 1
    np.testing.assert_allclose(sums[0, 1:], 0.0, atol=1e-4)


def test_long_stream_keeps_a_bounded_number_of_frames_alive():
    peaks = []
    for num_frames in (9, 31):
        clip = synthetic_clip(num_frames=num_frames, height=64, width=96, num_objects=2, seed=3)
        predictor, _ = oracle_predictor(clip)
        prediction = predictor.predict(clip.frames, video_id=1)
        diagnostics = prediction.diagnostics
        assert diagnostics["live_entries_at_end"] == 0
        assert diagnostics["peak_cached_frames"] <= TINY.inference.clip_length
        peaks.append({key: value for key, value in diagnostics.items() if key.startswith("peak")})
    assert peaks[0] == peaks[1]  # independent of the video's length


def test_reference_and_triton_clustering_give_the_same_tracks(device):
    torch.manual_seed(0)
    model = build_stemseg(tiny_config(min_seediness=0.3))
    clip = synthetic_clip(num_frames=5, height=64, width=96, seed=2)
    results = {}
    for backend in ("reference", "triton"):
        predictor = Predictor(model, device=device, backend=backend)
        prediction = predictor.predict(clip.frames, video_id=1)
        results[backend] = prediction
    reference, triton = results["reference"], results["triton"]
    assert len(reference.track_ids) > 0
    np.testing.assert_array_equal(reference.track_ids, triton.track_ids)
    np.testing.assert_array_equal(reference.pixel_counts, triton.pixel_counts)
    assert reference.rles == triton.rles


def test_random_init_tiny_model_runs_end_to_end_on_an_rgb_tensor():
    torch.manual_seed(1)
    model = build_stemseg(tiny_config(min_seediness=0.3))
    clip = synthetic_clip(num_frames=6, height=50, width=70, seed=4)
    predictor = Predictor(model, backend="reference")
    bgr = predictor.predict(clip.frames, video_id=1)
    rgb = predictor.predict(torch.from_numpy(clip.frames[..., ::-1].copy()), rgb=True, video_id=1)
    assert bgr.rles == rgb.rles
    video_tracks = bgr.select()
    assert video_tracks.tracks and len(video_tracks.tracks) <= TINY.inference.max_tracks
    for track in video_tracks.tracks:
        for frame in track.frames:
            assert decode_rle(track.rle(frame)).shape == (50, 70)
    assert set(video_tracks.timings) >= {"decode", "backbone", "heads", "clustering", "outputs"}
    assert all(seconds >= 0 for seconds in video_tracks.timings.values())
    davis = bgr.select("davis")
    assert [track.category_id for track in davis.tracks] == [1] * len(davis.tracks)
    kitti = bgr.select("kitti_mots")
    assert {track.category_id for track in kitti.tracks} <= {1, 2}


def test_lazy_export():
    assert stemseg_fast.Predictor is Predictor


# -- loading ---------------------------------------------------------------------------------------


def test_our_checkpoint_carries_its_preset(tmp_path):
    torch.manual_seed(0)
    model = build_stemseg(tiny_config(min_seediness=0.3))
    save_checkpoint(model, tmp_path / "model.pth")
    predictor = Predictor(str(tmp_path / "model.pth"), device="cpu")
    assert predictor.config.inference.min_seediness == 0.3
    for name, value in model.state_dict().items():
        assert torch.equal(predictor.model.state_dict()[name], value)
    # a preset with the same network supplies its inference constants
    with_preset = Predictor(str(tmp_path / "model.pth"), preset="tiny")
    assert with_preset.config.inference.min_seediness == 0.8
    with pytest.raises(ValueError, match="does not match preset 'youtube_vis'"):
        load_model(str(tmp_path / "model.pth"), "youtube_vis")


def test_official_file_needs_a_matching_preset(tmp_path):
    torch.manual_seed(0)
    model = build_stemseg(TINY)
    path = tmp_path / "official.pth"
    torch.save({"model": model.state_dict(), "iteration": 3}, path)
    loaded, config = load_model(str(path), "tiny")
    assert config.name == "tiny"
    for name, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], value)
    with pytest.raises(ValueError, match="records no preset"):
        load_model(str(path), None)
    with pytest.raises(CheckpointMismatchError, match="does not fit"):
        load_model(str(path), "davis")
    state = dict(model.state_dict(), **{"embedding_head.extra.weight": torch.zeros(1)})
    torch.save({"model": state}, path)
    with pytest.raises(CheckpointMismatchError, match="unexpected.*embedding_head.extra.weight"):
        load_model(str(path), "tiny")


def test_bad_arguments_are_one_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a named official checkpoint"):
        Predictor(str(tmp_path / "missing.pth"))
    with pytest.raises(ValueError, match="preset must be one of"):
        Predictor(build_stemseg(TINY), preset="nope")
    with pytest.raises(ValueError, match="precision must be one of"):
        Predictor(build_stemseg(TINY), precision="fp8")
    with pytest.raises(ValueError, match="backend must be one of"):
        Predictor(build_stemseg(TINY), backend="cuda")
    with pytest.raises(TypeError, match="checkpoint_or_model must be"):
        Predictor(3)


def test_inference_settings_reach_clustering_and_stitching(monkeypatch):
    clip = synthetic_clip(num_frames=8, height=64, width=96, num_objects=3, seed=4)
    calls = {}
    pipeline = importlib.import_module("stemseg_fast.inference.pipeline")
    clip_step = importlib.import_module("stemseg_fast.inference.clip_step")
    real_cluster, real_stitcher = clip_step.GreedyCluster, pipeline.ClipStitcher

    def spy_cluster(**kwargs):
        calls["cluster"] = kwargs
        return real_cluster(**kwargs)

    def spy_stitcher(**kwargs):
        calls["stitcher"] = kwargs
        return real_stitcher(**kwargs)

    monkeypatch.setattr(clip_step, "GreedyCluster", spy_cluster)
    monkeypatch.setattr(pipeline, "ClipStitcher", spy_stitcher)
    config = dataclasses.replace(tiny_config(), num_classes=4)
    network = OracleNetwork(clip.instance_ids, clip.categories, config)
    predictor = Predictor(
        network,
        device="cpu",
        backend="reference",
        inference={
            "distance_rule": "paper",
            "secondary_rule": "nearest",
            "stitch_iou_threshold": 0.1,
            "min_seediness": 0.9,
        },
    )
    assert len(predictor(clip.frames).tracks) == 3
    assert calls["cluster"]["distance_rule"] == "paper"
    assert calls["cluster"]["secondary_rule"] == "nearest"
    assert calls["cluster"]["min_seediness"] == 0.9
    assert calls["stitcher"]["iou_threshold"] == 0.1
    with pytest.raises(ValueError, match=r"unknown inference settings \['overlap'\]"):
        Predictor(build_stemseg(TINY), inference={"overlap": 2})
