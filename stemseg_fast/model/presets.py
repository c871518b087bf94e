"""Model presets: frozen dataclasses to read, ``dataclasses.replace`` and build.

Values come from the official configs (stemseg_reference.md sections 1, 4, 10): backbone,
embedding mode, decoder widths, heads, and the inference constants that the inference stage
reads (clip length and overlap, clustering thresholds, track limits, foreground rule, input
sizes, clustering resolution). ``ovis`` is not an official model: it follows the OVIS
challenge report (X-101-FPN, xyff) with the YouTube-VIS inference settings.

Example::

    from dataclasses import replace
    config = replace(PRESETS["youtube_vis"], inference=replace(PRESETS["youtube_vis"].inference,
                                                         clip_overlap=2))
    model = build_stemseg(config)
"""

from dataclasses import asdict, dataclass, field
from typing import Any, Mapping, Optional, Tuple

from stemseg_fast.benchmarks import canonical_name
from stemseg_fast.categories import OVIS_CATEGORIES, YOUTUBE_VIS_CATEGORIES
from stemseg_fast.config import AT_LEAST_1, POSITIVE, Range, from_dict

from .embeddings import FREE_DIM_PRECISION


@dataclass(frozen=True)
class BackboneConfig:
    """ResNet/ResNeXt-FPN arguments (see :func:`stemseg_fast.model.backbone.build_backbone`)."""

    blocks_per_stage: Tuple[int, ...] = (3, 4, 23, 3)
    num_groups: int = 1
    width_per_group: int = 64
    stride_in_1x1: bool = True
    stem_channels: int = 64
    res2_out_channels: int = 256
    fpn_channels: int = 256
    freeze_at: int = 2  # stem and res2 frozen (official FREEZE_AT_STAGE 2)


@dataclass(frozen=True)
class DecoderConfig:
    """TSE decoder widths (c32, c16, c8, c4) and GroupNorm groups."""

    widths: Tuple[int, ...] = (256, 256, 128, 128)
    num_groups: int = 32


@dataclass(frozen=True)
class InferenceConfig:
    """Constants the inference stage reads (official inference/main.py, clusterers.py)."""

    clip_length: int = 8  # T of an inference clip
    clip_overlap: int = 4  # frames shared by consecutive clips
    min_seediness: float = 0.8  # stop seeding below this seediness
    primary_prob_threshold: float = 0.5  # assign voxels with exp(-d/2) above this
    secondary_prob_threshold: float = 0.3  # leftover voxels' second chance
    max_instances_per_clip: int = 20
    max_tracks: int = 10  # tracks kept per video in the outputs
    foreground_source: str = "semantic"  # "semantic": sigmoid(fg logit); "seediness"
    foreground_threshold: float = 0.5
    min_dim: int = 640  # resize rule: short side to min_dim ...
    max_dim: int = 1196  # ... unless the long side would exceed max_dim
    cluster_at_full_resolution: bool = True  # upsample x4 before clustering (YTVIS)
    # The official quirks are the defaults; "paper", "nearest" and a threshold fix them (see
    # stemseg_fast.kernels.greedy_cluster and stemseg_fast.inference.stitching).
    distance_rule: str = "official"  # p = exp(-d/2) with d the root of the Mahalanobis form
    secondary_rule: str = "official"  # leftover voxels go to the *farthest* cluster
    stitch_iou_threshold: Optional[float] = None  # None: every Hungarian match, even IoU 0

    def __post_init__(self):
        # Settings reach here from --set, checkpoints and config files: check type and range
        # now, naming the setting, rather than fail deep inside interpolate or a kernel.
        for name in (
            "min_seediness",
            "primary_prob_threshold",
            "secondary_prob_threshold",
            "foreground_threshold",
        ):
            self._set(name, _number_in(getattr(self, name), name, 0.0, 1.0))
        if self.stitch_iou_threshold is not None:
            self._set(
                "stitch_iou_threshold",
                _number_in(self.stitch_iou_threshold, "stitch_iou_threshold", 0.0, 1.0),
            )
        _integer_in(self.clip_length, "clip_length", 1, 256)
        _integer_in(self.clip_overlap, "clip_overlap", 0, self.clip_length - 1)
        _integer_in(self.max_instances_per_clip, "max_instances_per_clip", 1, 1024)
        _integer_in(self.max_tracks, "max_tracks", 1, 100_000)
        _integer_in(self.min_dim, "min_dim", 32, MAX_INPUT_DIM)
        _integer_in(self.max_dim, "max_dim", self.min_dim, MAX_INPUT_DIM)
        if not isinstance(self.cluster_at_full_resolution, bool):
            raise ValueError(
                f"inference setting cluster_at_full_resolution must be true or "
                f"false, got {self.cluster_at_full_resolution!r}"
            )
        for name, choices in (
            ("foreground_source", ("semantic", "seediness")),
            ("distance_rule", ("official", "paper")),
            ("secondary_rule", ("official", "nearest")),
        ):
            if getattr(self, name) not in choices:
                raise ValueError(
                    f"inference setting {name} must be one of "
                    f"{', '.join(choices)}, got {getattr(self, name)!r}"
                )

    def _set(self, name, value):
        object.__setattr__(self, name, value)


MAX_INPUT_DIM = 8192  # pixels; a frame side beyond it is a typo, not a video


def _number_in(value, name, low, high):
    if (
        isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high
    ):  # NaN fails both comparisons
        raise ValueError(
            f"inference setting {name} must be a number in [{low:g}, {high:g}], got {value!r}"
        )
    return float(value)


def _integer_in(value, name, low, high):
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(
            f"inference setting {name} must be an integer in [{low}, {high}], got {value!r}"
        )


@dataclass(frozen=True)
class STEmSegConfig:
    """Everything that defines a STEm-Seg network and how to run it.

    ``seediness_decoder=None``: seediness comes from the embedding decoder (one more 1x1x1
    conv); ``semantic_decoder=None``: no semantic head. ``num_classes`` counts the background;
    ``category_names`` optionally names classes 1 .. num_classes - 1 (for overlays and reports).
    """

    name: str
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    embedding_mode: str = "xyff"
    embedding_decoder: DecoderConfig = field(default_factory=DecoderConfig)
    seediness_decoder: Optional[DecoderConfig] = None
    semantic_decoder: Optional[DecoderConfig] = field(default_factory=DecoderConfig)
    num_classes: int = 41
    free_dim_precision: float = FREE_DIM_PRECISION
    train_clip_length: int = 8
    inference: InferenceConfig = field(default_factory=InferenceConfig)
    category_names: Optional[Tuple[str, ...]] = None

    def __post_init__(self):
        if self.category_names is not None and len(self.category_names) != self.num_classes - 1:
            raise ValueError(
                f"category_names must name the {self.num_classes - 1} classes "
                f"after the background, got {len(self.category_names)} names"
            )

    def to_dict(self) -> dict:
        """Plain dict (tuples, numbers, strings) for checkpoints."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "STEmSegConfig":
        """Inverse of :meth:`to_dict`; unknown keys are an error. A preset name of an earlier
        version (``ytvis``) reads as today's."""
        if isinstance(values, dict) and "name" in values:
            values = dict(values, name=canonical_name(values["name"]))
        return from_dict(cls, values, where="config", ranges=MODEL_FIELD_RANGES)


# The range of every number a config dict may set (checkpoints, training's model_overrides),
# by dataclass and field; the inference constants check themselves (InferenceConfig).
MODEL_FIELD_RANGES = {
    "STEmSegConfig": {
        "num_classes": Range(2),
        "free_dim_precision": POSITIVE,
        "train_clip_length": AT_LEAST_1,
    },
    "BackboneConfig": {
        "blocks_per_stage": AT_LEAST_1,
        "num_groups": AT_LEAST_1,
        "width_per_group": AT_LEAST_1,
        "stem_channels": AT_LEAST_1,
        "res2_out_channels": AT_LEAST_1,
        "fpn_channels": AT_LEAST_1,
        "freeze_at": Range(0, 5),
    },
    "DecoderConfig": {"widths": AT_LEAST_1, "num_groups": AT_LEAST_1},
}


R101 = BackboneConfig()
X101_32X8D = BackboneConfig(num_groups=32, width_per_group=8, stride_in_1x1=False)

PRESETS = {
    config.name: config
    for config in (
        STEmSegConfig(
            "youtube_vis",
            backbone=R101,
            embedding_mode="xyff",
            semantic_decoder=DecoderConfig(widths=(256, 256, 256, 256)),
            num_classes=41,
            category_names=YOUTUBE_VIS_CATEGORIES,
            inference=InferenceConfig(
                clip_length=8,
                clip_overlap=4,
                max_tracks=10,
                min_dim=640,
                max_dim=1196,
                cluster_at_full_resolution=True,
            ),
        ),
        STEmSegConfig(
            "davis",
            backbone=R101,
            embedding_mode="xyff",
            seediness_decoder=DecoderConfig(),
            semantic_decoder=None,
            num_classes=2,
            train_clip_length=16,
            inference=InferenceConfig(
                clip_length=16,
                clip_overlap=6,
                max_tracks=20,
                foreground_source="seediness",
                foreground_threshold=0.25,
                min_dim=736,
                max_dim=1248,
                cluster_at_full_resolution=False,
            ),
        ),
        STEmSegConfig(
            "kitti_mots",
            backbone=R101,
            embedding_mode="xyt",
            num_classes=3,
            category_names=("car", "pedestrian"),
            inference=InferenceConfig(
                clip_length=8,
                clip_overlap=4,
                min_seediness=0.95,
                max_tracks=1000,
                min_dim=800,
                max_dim=1948,
                cluster_at_full_resolution=False,
            ),
        ),
        STEmSegConfig(
            "ovis",
            backbone=X101_32X8D,
            embedding_mode="xyff",
            num_classes=26,
            category_names=OVIS_CATEGORIES,
            inference=InferenceConfig(
                clip_length=8,
                clip_overlap=4,
                max_tracks=20,
                min_dim=640,
                max_dim=1196,
                cluster_at_full_resolution=True,
            ),
        ),
        # Tests and the demo: one bottleneck per stage, narrow everything; a CPU forward on a
        # 4 x 64 x 96 clip takes a small fraction of a second.
        STEmSegConfig(
            "tiny",
            backbone=BackboneConfig(
                blocks_per_stage=(1, 1, 1, 1),
                width_per_group=8,
                stem_channels=16,
                res2_out_channels=32,
                fpn_channels=32,
            ),
            embedding_mode="xyff",
            embedding_decoder=DecoderConfig(widths=(32, 32, 32, 32)),
            semantic_decoder=DecoderConfig(widths=(32, 32, 32, 32)),
            num_classes=3,
            inference=InferenceConfig(
                clip_length=4,
                clip_overlap=2,
                min_dim=64,
                max_dim=96,
                cluster_at_full_resolution=False,
            ),
        ),
    )
}
