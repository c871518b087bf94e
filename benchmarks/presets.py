"""Named size presets of record, defined once and shared by every benchmark.

N counts voxels of one clip at the resolution the op runs at (T * H * W).
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class SizePreset:
    name: str
    num_frames: int  # T
    height: int  # H of the map the op runs on
    width: int  # W
    num_dims: int = 4  # E (xyff)
    num_variance_dims: int = 2  # E - F
    num_instances: int = 10  # K instances in a training clip
    foreground_fraction: float = 0.3  # share of voxels inside some instance / foreground
    max_clusters: int = 20  # seeds per clip at inference

    @property
    def num_voxels(self):
        """N = T * H * W."""
        return self.num_frames * self.height * self.width


PRESETS = {
    preset.name: preset
    for preset in (
        # YouTube-VIS 1280x720 -> 1152x640 padded, stride-4 map 160x288, clip of 8.
        SizePreset("ytvis720_T8", 8, 160, 288),
        # DAVIS 854x480 -> 1248x704 padded, stride-4 map 176x312, clip of 16.
        SizePreset("davis_T16", 16, 176, 312),
        # OVIS input resolution 640x1152, clustering at full resolution (N ~ 5.9 M).
        SizePreset("ovis_T8_fullres", 8, 640, 1152, num_instances=20),
        # The same clip clustered at stride 4.
        SizePreset("ovis_T8_stride4", 8, 160, 288, num_instances=20),
        # Small enough for a CPU run of every reference in seconds.
        SizePreset("cpu_small", 4, 40, 72, num_instances=5),
    )
}
