"""Clip stitching: two overlapping clips of an OVIS-size video (T = 8, overlap 4, the K = 20
drifting instances of the preset as cluster labels) through ``ClipStitcher``: the joint
histogram of the 4 overlapping frames, the Hungarian matching, the relabelling gather of the new
frames and the track counters.

Bytes: the first clip stores its 8 frames (read int64 labels, write int64 track ids, bincount
for the counters); the second reads 2 x 4 overlapping frames of int64 labels and the foreground
for the histogram, and relabels and counts its 4 new frames: about (8 * 3 + 4 * 2 + 1 + 4 * 3)
* HW * 8 bytes.
"""

import dataclasses

import pytest
from harness import bench_device, presets, run_benchmark
from inputs import instance_id_map
from presets import PRESETS

from stemseg_fast.inference.stitching import ClipStitcher

PRESET_NAMES = presets(("ovis_T8_fullres", "ovis_T8_stride4"), ("cpu_small", "ovis_T8_stride4"))
OVERLAP = 4


def setup_stitching(preset_name):
    preset = PRESETS[preset_name]
    stride = preset.num_frames - OVERLAP
    video = dataclasses.replace(preset, num_frames=preset.num_frames + stride)
    ids = instance_id_map(video, device=bench_device())  # [T + stride, H, W]
    clips = [
        (list(range(start, start + preset.num_frames)), ids[start : start + preset.num_frames])
        for start in (0, stride)
    ]
    # the second clip numbers its clusters differently, as a new clustering would
    second_frames, second_labels = clips[1]
    renumbered = (second_labels + 7) % preset.num_instances
    clips[1] = (second_frames, renumbered.masked_fill(second_labels < 0, -1))

    def stitch_two_clips():
        stitcher = ClipStitcher()
        for frames, labels in clips:
            stitcher.add_clip(labels, frames, foreground=labels >= 0)
        return stitcher.track_stats()

    return preset, stitch_two_clips


@pytest.mark.parametrize("preset_name", PRESET_NAMES)
def test_stitch_two_clips(benchmark, preset_name):
    preset, stitch_two_clips = setup_stitching(preset_name)
    benchmark.group = f"stitching-{preset_name}"
    frame_bytes = preset.height * preset.width * 8
    moved = (preset.num_frames * 3 + OVERLAP * 2 + 1 + OVERLAP * 3) * frame_bytes
    run_benchmark(benchmark, stitch_two_clips, bytes_moved=moved)
