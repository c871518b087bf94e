"""``stemseg-fast train --config training/configs/<preset>.yaml`` and
``torchrun --nproc_per_node N -m stemseg_fast.training.train --config ...``.

A YAML config names the model preset, the data sources and their mixture, optimiser, schedule,
loop and loss settings (:class:`TrainConfig`); ``--set key.sub=value`` overrides single values.
Checkpoints and TensorBoard logs go to the run folder; a run that finds checkpoints there
resumes from the newest. The final weights are written as a model checkpoint
(``model_final.pth``) that ``stemseg-fast infer --checkpoint`` loads.
"""

import dataclasses
import logging
import os
from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Sequence, Union

import torch

from stemseg_fast.benchmarks import DAVIS, KITTI_MOTS, OVIS, YOUTUBE_VIS, canonical_name
from stemseg_fast.config import parse_assignment
from stemseg_fast.io.files import PathLike
from stemseg_fast.categories import check_target_names, resolve_category_map
from stemseg_fast.model.checkpoints import (
    OFFICIAL_CHECKPOINT_URLS,
    check_state_dict,
    download_official_checkpoint,
    is_model_checkpoint,
    load_official_weights,
    official_state_dict,
    read_checkpoint_file,
    save_checkpoint,
)
from stemseg_fast.model.presets import PRESETS, STEmSegConfig
from stemseg_fast.model.stemseg import STEmSeg, build_stemseg

from .checkpoint import FINAL_MODEL_NAME
from .config import LoopConfig, OptimizerConfig, ScheduleConfig, from_dict, load_yaml
from .datasets import (
    COCO_AUGMENTATION,
    MAPILLARY_AUGMENTATION,
    VOC_AUGMENTATION,
    MixedClipDataset,
    PseudoClipDataset,
    TargetBuilder,
    VideoClipDataset,
    collate_clips,
    mixture_counts,
    read_coco,
    read_davis,
    read_kitti_mots,
    read_ytvis,
)
from stemseg_fast.distributed import init_distributed, shutdown_distributed
from .objective import LOSS_IMPLEMENTATIONS, LossConfig, STEmSegObjective
from .schedule import SCHEDULE_KINDS
from .trainer import PRECISIONS, Trainer

logger = logging.getLogger("stemseg_fast.training")

AUGMENTATIONS = {
    "coco": COCO_AUGMENTATION,
    "voc": VOC_AUGMENTATION,
    "mapillary": MAPILLARY_AUGMENTATION,
}
SOURCE_KINDS = (YOUTUBE_VIS, OVIS, "coco", DAVIS, KITTI_MOTS)


@dataclass(frozen=True)
class SourceConfig:
    """One data source.

    ``annotations``: the JSON file (youtube_vis, ovis, coco), the folder of per-sequence txt files
    (kitti_mots), or the annotation folder name under the root (davis; default
    ``Annotations``). ``images``: the image root (davis: the dataset root). ``sequences``
    (davis, kitti_mots): the sequence names to train on, or a text file listing them one per
    line (e.g. ``ImageSets/2017/train.txt``); None reads every sequence. ``category_map``
    (coco): a name from :data:`stemseg_fast.categories.CATEGORY_MAPS` (the official
    ``coco_to_youtube_vis``, ``voc_to_youtube_vis``, ``coco_davis``, ``voc_davis``; ``coco_to_ovis``) or
    an explicit {image class id: training class id}; classes it does not list are dropped.
    ``min_area``: smaller instances are dropped (official VOC for DAVIS: 50 px).
    """

    kind: str
    images: str
    annotations: str = ""
    weight: float = 1.0
    category_agnostic: bool = False
    duplicate_single_instance: bool = True
    frame_span: int = 8
    augmentation: str = "coco"  # pseudo-clips: coco (rotation 12 deg), voc / mapillary (10 deg)
    category_map: Optional[object] = None
    min_area: int = 0
    sequences: Optional[object] = None


@dataclass(frozen=True)
class DataConfig:
    sources: tuple = field(default=(), metadata={"items": SourceConfig})
    clip_length: int = 8
    min_dim: int = 640  # training resize rule (official INPUT.MIN_DIM / MAX_DIM)
    max_dim: int = 1196


@dataclass(frozen=True)
class TrainConfig:
    """A whole training run. ``model``: a preset name; ``model_overrides``: fields of its
    :class:`STEmSegConfig` to replace (e.g. ``num_classes``). ``init_weights``: a named
    official checkpoint, an official file (full model or ``mask_rcnn_*_backbone.pth``) or one of
    our model checkpoints."""

    model: str
    data: DataConfig
    run_dir: str = "runs/stemseg"
    model_overrides: Optional[dict] = None
    init_weights: Optional[str] = None
    freeze_backbone: bool = False
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    loop: LoopConfig = field(default_factory=LoopConfig)
    losses: LossConfig = field(default_factory=LossConfig)


def _set_dotted(values, dotted, value):
    """``a.b.0.c=value``: keys into mappings, numbers into lists (``data.sources.0.images``)."""
    *parents, leaf = dotted.split(".")
    node = values
    for key in parents:
        node = _child(node, key, dotted, create=True)
    if isinstance(node, list):
        node[_list_index(node, leaf, dotted)] = value
    elif isinstance(node, dict):
        node[leaf] = value
    else:
        raise ValueError(f"--set {dotted}: cannot go into {_a_type(node)} value")


def _a_type(value):
    name = type(value).__name__
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name}"


def _list_index(node, key, dotted):
    if not key.isdigit() or int(key) >= len(node):
        raise ValueError(f"--set {dotted}: {key!r} is not an index of a list of {len(node)}")
    return int(key)


def _child(node, key, dotted, create):
    if isinstance(node, list):
        return node[_list_index(node, key, dotted)]
    if not isinstance(node, dict):
        raise ValueError(f"--set {dotted}: cannot go into {_a_type(node)} value")
    return node.setdefault(key, {}) if create else node[key]


def load_train_config(path: PathLike, overrides: Sequence[str] = ()) -> TrainConfig:
    """Read a YAML config and apply ``key.sub=value`` overrides (values parsed as YAML).

    Every value is checked here, before anything is built or written: a ValueError names the
    file, the key and what it expects.
    """
    values = load_yaml(path)
    if not isinstance(values, dict):
        raise ValueError(
            f"config {path} must hold a mapping of settings, got {type(values).__name__}"
        )
    for override in overrides:
        _set_dotted(values, *parse_assignment(override, "--set"))
    where = f"{path} (with --set)" if overrides else str(path)
    try:
        config = from_dict(TrainConfig, values, where="")
        config = _with_canonical_names(config)
        _check_choices_and_relations(config)
        model_config(config)  # model_overrides: checked like the rest
    except ValueError as error:
        raise ValueError(f"{where}: {error}") from None
    return config


def _with_canonical_names(config):
    """The config with benchmarks spelt as today (a config of an earlier version may say
    ``ytvis``)."""
    sources = tuple(
        dataclasses.replace(source, kind=canonical_name(source.kind))
        for source in config.data.sources
    )
    return dataclasses.replace(
        config,
        model=canonical_name(config.model),
        data=dataclasses.replace(config.data, sources=sources),
    )


def _check_choices_and_relations(config):
    if config.model not in PRESETS:
        raise ValueError(f"model must be one of {sorted(PRESETS)}, got {config.model!r}")
    choices = [
        ("loop.precision", config.loop.precision, tuple(PRECISIONS)),
        ("schedule.kind", config.schedule.kind, SCHEDULE_KINDS),
        ("losses.implementation", config.losses.implementation, LOSS_IMPLEMENTATIONS),
    ]
    for index, source in enumerate(config.data.sources):
        choices += [
            (f"data.sources[{index}].kind", source.kind, SOURCE_KINDS),
            (f"data.sources[{index}].augmentation", source.augmentation, tuple(AUGMENTATIONS)),
        ]
    for key, value, allowed in choices:
        if value not in allowed:
            raise ValueError(f"{key} must be one of {list(allowed)}, got {value!r}")
    if not config.data.sources:
        raise ValueError("data.sources is empty")
    if not sum(source.weight for source in config.data.sources) > 0:
        raise ValueError("data.sources: the weights must have a positive sum")
    for index, source in enumerate(config.data.sources):
        if not source.images:
            raise ValueError(f"data.sources[{index}].images must name the image folder")
    if config.data.max_dim < config.data.min_dim:
        raise ValueError(
            f"data.max_dim must be >= data.min_dim = {config.data.min_dim}, got "
            f"{config.data.max_dim}"
        )
    loop = config.loop
    if loop.global_batch % loop.micro_batch:
        raise ValueError(
            f"loop.global_batch must be a multiple of loop.micro_batch = "
            f"{loop.micro_batch}, got {loop.global_batch}"
        )
    if config.optimizer.nesterov and config.optimizer.momentum == 0:
        raise ValueError("optimizer.momentum must be > 0 with optimizer.nesterov: true")
    if not config.run_dir:
        raise ValueError("run_dir must name a folder")


def _deep_merge(base, overrides):
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            value = _deep_merge(merged[key], value)
        merged[key] = value
    return merged


def model_config(config: TrainConfig) -> STEmSegConfig:
    """The preset with ``model_overrides`` merged in (nested sections key by key)."""
    preset = PRESETS[config.model]
    if not config.model_overrides:
        return preset
    return from_dict(
        STEmSegConfig,
        _deep_merge(preset.to_dict(), config.model_overrides),
        where="model_overrides",
    )


def _sequences(source):
    """Sequence names from a list or from a text file with one name per line."""
    if source.sequences is None or isinstance(source.sequences, (list, tuple)):
        return source.sequences
    try:
        with open(source.sequences, encoding="utf-8") as handle:
            return [line.strip() for line in handle if line.strip()]
    except OSError as error:
        raise ValueError(
            f"cannot read the sequence list {source.sequences}: {error.strerror}"
        ) from None


def _read_source(source):
    """(samples, their class names {id: name} or None, target class names of the source's
    category map or None)."""
    if source.kind == "coco":
        category_map, target_names = (
            resolve_category_map(source.category_map)
            if source.category_map is not None
            else (None, None)
        )
        images, _ = read_coco(
            source.annotations, source.images, category_map=category_map, min_area=source.min_area
        )
        return images, None, target_names
    if source.kind in (YOUTUBE_VIS, OVIS):
        videos, names = read_ytvis(source.annotations, source.images)
        return videos, names, None
    if source.kind == "davis":
        return (
            read_davis(
                source.images,
                sequences=_sequences(source),
                annotation_folder=source.annotations or "Annotations",
            ),
            None,
            None,
        )
    return (
        read_kitti_mots(source.annotations, source.images, sequences=_sequences(source)),
        None,
        None,
    )


def _check_classes(samples, source, num_classes, where):
    """Every training class must be one the semantic head has, before training starts."""
    if source.category_agnostic:
        return
    largest = max((max(sample.categories, default=0) for sample in samples), default=0)
    if largest >= num_classes:
        hint = " (map COCO/VOC classes with category_map)" if source.kind == "coco" else ""
        raise ValueError(
            f"{where}: class ids go up to {largest}, but the model has "
            f"{num_classes} classes including the background{hint}"
        )


def build_dataset(config: TrainConfig) -> MixedClipDataset:
    """The mixed training set: ``loop.max_steps * loop.global_batch`` clips split over the
    sources by weight (official: MAX_ITER x BATCH_SIZE samples, fixed counts per source)."""
    data = config.data
    num_classes = model_config(config).num_classes
    targets = TargetBuilder(data.min_dim, data.max_dim)
    names = [f"{index}:{source.kind}" for index, source in enumerate(data.sources)]
    total = config.loop.max_steps * config.loop.global_batch
    counts = mixture_counts(
        {name: source.weight for name, source in zip(names, data.sources)}, total
    )
    read = {name: _read_source(source) for name, source in zip(names, data.sources)}
    video_class_names = [names_ for _, names_, _ in read.values() if names_]
    datasets = {}
    for index, (name, source) in enumerate(zip(names, data.sources)):
        samples, _, target_names = read[name]
        where = f"data.sources[{index}] ({source.kind})"
        if target_names and video_class_names:
            check_target_names(target_names, video_class_names[0], where)
        _check_classes(samples, source, num_classes, where)
        if counts[name] == 0:
            continue
        common = dict(
            targets=targets,
            clip_length=data.clip_length,
            category_agnostic=source.category_agnostic,
            seed=config.loop.seed + index,
        )
        if source.kind == "coco":
            datasets[name] = PseudoClipDataset(
                samples, counts[name], augmentation=AUGMENTATIONS[source.augmentation], **common
            )
        else:
            datasets[name] = VideoClipDataset(
                samples,
                counts[name],
                frame_span=source.frame_span,
                duplicate_single_instance=source.duplicate_single_instance,
                **common,
            )
    return MixedClipDataset(datasets)


def _load_initial_weights(model, init_weights):
    """Fill ``model`` from ``init_weights``; any file that is not a fitting checkpoint of
    finite tensors is a ValueError naming it."""
    path = (
        download_official_checkpoint(init_weights)
        if init_weights in OFFICIAL_CHECKPOINT_URLS
        else init_weights
    )
    what = f"init_weights {path}"
    payload, state_dict, ours = _read_initial_weights(path, what)
    try:
        if ours:
            expected = model.state_dict()
            mismatched = [
                f"{key}: file {list(value.shape)}, model {list(expected[key].shape)}"
                for key, value in state_dict.items()
                if key in expected and value.shape != expected[key].shape
            ]
            if mismatched:
                raise ValueError(
                    f"shape mismatch ({len(mismatched)}): "
                    f"{', '.join(mismatched[:3])}" + (", ..." if len(mismatched) > 3 else "")
                )
            missing, unexpected = model.load_state_dict(state_dict, strict=False)
            if unexpected:
                raise ValueError(f"keys the model does not have: {sorted(unexpected)}")
            logger.info(
                "initialised from %s (%d keys kept at their initial values)", path, len(missing)
            )
        else:
            load_official_weights(model, payload)
    except (ValueError, KeyError, RuntimeError) as error:
        # a mismatch (CheckpointMismatchError is a KeyError; torch raises RuntimeError for
        # shapes): one line naming the file
        raise ValueError(f"{what}: {_first_line(error)}") from None


def _read_initial_weights(path, what):
    """(the file's contents, its state dict, whether it is our model format), checked to be
    a readable mapping of finite tensors; ValueErrors start with ``what``."""
    try:
        payload = read_checkpoint_file(path)
        ours = is_model_checkpoint(payload)
        state_dict = (
            check_state_dict(payload["state_dict"], "the file")
            if ours
            else official_state_dict(payload, "the file")
        )
    except (ValueError, FileNotFoundError) as error:
        raise ValueError(f"{what}: {_first_line(error)}") from None
    return payload, state_dict, ours


def _first_line(error):
    text = str(error.args[0]) if isinstance(error, KeyError) and error.args else str(error)
    return text.strip().splitlines()[0] if text.strip() else type(error).__name__


def architecture(config: TrainConfig) -> Dict[str, Any]:
    """What a run resuming from a checkpoint must share with it: the model configuration
    (inference settings and class names aside: they change no weight) and which parameters
    are trained."""
    model = {
        key: value
        for key, value in model_config(config).to_dict().items()
        if key not in ("inference", "category_names")
    }
    return {"model": model, "freeze_backbone": config.freeze_backbone}


def build_model(config: TrainConfig, device: torch.device) -> STEmSeg:
    # Official: torch.manual_seed(42) right before the model is built.
    torch.manual_seed(config.loop.seed)
    model = build_stemseg(model_config(config), fused=device.type == "cuda")
    if config.init_weights:
        _load_initial_weights(model, config.init_weights)
    if config.freeze_backbone:
        model.backbone.requires_grad_(False)
    return model


def run(config: TrainConfig, *, device: Optional[Union[str, torch.device]] = None) -> Optional[str]:
    """Train as ``config`` says; returns the path of the final model checkpoint, or None when
    a signal stopped training early (after writing a checkpoint to resume from)."""
    context = init_distributed(device)
    try:
        model = build_model(config, context.device)
        objective = STEmSegObjective(
            config.losses, free_dim_precision=model.config.free_dim_precision
        )
        trainer = Trainer(
            model,
            objective,
            build_dataset(config),
            optimizer=config.optimizer,
            schedule=config.schedule,
            loop=config.loop,
            run_dir=config.run_dir,
            collate_fn=collate_clips,
            context=context,
            config_record=dataclasses.asdict(config),
            architecture=architecture(config),
        )
        if trainer.fit() < config.loop.max_steps:
            # Stopped by a signal: the checkpoint resumes it; a final model would mislead the
            # next stage that initialises from it.
            return None
        final = os.path.join(config.run_dir, FINAL_MODEL_NAME)
        if context.is_main:
            save_checkpoint(trainer.module, final)
        return final
    finally:
        shutdown_distributed()
