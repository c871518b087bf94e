"""Drop-in inference: ``Predictor(checkpoint, preset=...)(video) -> VideoTracks``.

Example::

    from stemseg_fast import Predictor

    predictor = Predictor("youtube_vis")                 # named official checkpoint (downloaded)
    predictor = Predictor("run/checkpoint.pth")          # our checkpoint: carries its preset
    predictor = Predictor("youtube_vis.pth", preset="youtube_vis")   # an official file
    video_tracks = predictor("clip.mp4")                 # or a frame folder, or [T, H, W, 3] BGR
    for track in video_tracks.tracks:
        print(track.track_id, track.category_id, track.score, track.frames)
    mask = video_tracks.tracks[0].mask(0)                # [H, W] uint8, decoded from its RLE
    print(video_tracks.timings)                          # seconds per stage

``predictor.predict(video)`` returns a :class:`VideoPrediction` holding every stitched track,
from which each benchmark's selection rule builds its :class:`VideoTracks`
(``prediction.select("youtube_vis" | "davis" | "kitti_mots")``): one network pass serves every
output format. ``predictor(video)`` applies the preset's own rule.

How a video is processed (streaming, memory bounded by the clip): see
:mod:`stemseg_fast.inference.pipeline`.
"""

import dataclasses
import os
from typing import Iterable, Iterator, Mapping, Optional, Tuple, Union

import numpy as np
import torch
from torch import nn

from stemseg_fast.benchmarks import DAVIS, KITTI_MOTS, OVIS, YOUTUBE_VIS, canonical_name
from stemseg_fast.distributed import resolve_device
from stemseg_fast.io.video import FrameSource, open_video
from stemseg_fast.kernels import BACKENDS, resolve_backend
from stemseg_fast.model import PRESETS, STEmSegConfig, build_stemseg
from stemseg_fast.model.checkpoints import (
    OFFICIAL_CHECKPOINT_PRESETS,
    download_official_checkpoint,
    is_model_checkpoint,
    load_official_weights,
    model_from_checkpoint,
    official_state_dict,
    read_checkpoint_file,
)
from stemseg_fast.model.presets import InferenceConfig
from stemseg_fast.tracks import VideoTracks

from .clip_step import ClipSteps
from .pipeline import StreamedFrame, VideoRun
from .prediction import VideoPrediction

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
_AUTOCAST_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
# The output rule each preset was made for; presets not listed: YouTube-VIS with a semantic
# head, DAVIS without.
PRESET_RULES = {
    YOUTUBE_VIS: YOUTUBE_VIS,
    OVIS: YOUTUBE_VIS,
    "tiny": YOUTUBE_VIS,
    DAVIS: DAVIS,
    KITTI_MOTS: KITTI_MOTS,
}


def default_rule(config: STEmSegConfig) -> str:
    """The selection rule a preset's outputs follow."""
    if config.name in PRESET_RULES:
        return PRESET_RULES[config.name]
    return YOUTUBE_VIS if config.semantic_decoder is not None else DAVIS


def _architecture_differences(saved: STEmSegConfig, wanted: STEmSegConfig):
    """Names of the fields (other than the name and the inference constants) that differ."""
    return [
        f.name
        for f in dataclasses.fields(STEmSegConfig)
        if f.name not in ("name", "inference") and getattr(saved, f.name) != getattr(wanted, f.name)
    ]


def _check_same_architecture(saved, wanted, where):
    differences = _architecture_differences(saved, wanted)
    if differences:
        raise ValueError(
            f"{where} holds a {saved.name!r} network, which does not match preset "
            f"{wanted.name!r} (different {', '.join(differences)})"
        )


def _preset_config(preset):
    if preset is None or isinstance(preset, STEmSegConfig):
        return preset
    if isinstance(preset, str):
        preset = canonical_name(preset)
        if preset not in PRESETS:
            raise ValueError(
                f"preset must be one of {', '.join(sorted(PRESETS))} or an "
                f"STEmSegConfig, got {preset!r}"
            )
        return PRESETS[preset]
    raise TypeError(
        f"preset must be a preset name or an STEmSegConfig, got {type(preset).__name__}"
    )


# What a video may be: a file, a folder of frames, a camera index or URL, frames in memory
# ([T, H, W, 3] uint8), a frame source, or any iterable of [H, W, 3] frames.
VideoInput = Union[
    str, os.PathLike, int, np.ndarray, torch.Tensor, FrameSource, Iterable[np.ndarray]
]
Preset = Union[str, STEmSegConfig, None]


def load_model(
    checkpoint_or_model: Union[nn.Module, str, os.PathLike],
    preset: Preset = None,
    *,
    fused: bool = False,
    backend: str = "auto",
) -> Tuple[nn.Module, STEmSegConfig]:
    """(model, config) from whatever :class:`Predictor` accepts.

    Args:
        checkpoint_or_model: a built network (an :class:`~stemseg_fast.model.STEmSeg`, or any
            module with its ``backbone_features`` / ``stack_clip`` / ``heads``); a path to our
            checkpoint (carries its preset); a path to an official checkpoint (needs
            ``preset``); or a named official checkpoint (``youtube_vis``, ``davis``,
            ``kitti_mots``: downloaded once, preset implied).
        preset: preset name or :class:`~stemseg_fast.model.STEmSegConfig`. With a checkpoint
            that carries a network, it must describe the same network (else ``ValueError``);
            its ``inference`` constants are then the ones used.
        fused, backend: how a network built here runs its decoders.
    """
    wanted = _preset_config(preset)
    if isinstance(checkpoint_or_model, nn.Module):
        model = checkpoint_or_model
        for method in ("backbone_features", "stack_clip", "heads"):
            if not callable(getattr(model, method, None)):
                raise TypeError(
                    f"checkpoint_or_model must be an STEmSeg-like module with "
                    f"{method}(), got {type(model).__name__}"
                )
        saved = getattr(model, "config", None)
        if saved is None and wanted is None:
            raise ValueError("preset must be given for a model without a .config")
        if saved is not None and wanted is not None:
            _check_same_architecture(saved, wanted, "the model")
        return model, wanted or saved
    if not isinstance(checkpoint_or_model, (str, os.PathLike)):
        raise TypeError(
            f"checkpoint_or_model must be an STEmSeg, a checkpoint path or an "
            f"official checkpoint name, got {type(checkpoint_or_model).__name__}"
        )
    path = os.fspath(checkpoint_or_model)
    options = dict(fused=fused, backend=backend)
    if not os.path.exists(path):
        if path not in OFFICIAL_CHECKPOINT_PRESETS:
            raise FileNotFoundError(
                f"checkpoint {path} does not exist and is not a named official checkpoint "
                f"({', '.join(sorted(OFFICIAL_CHECKPOINT_PRESETS))})"
            )
        official = PRESETS[OFFICIAL_CHECKPOINT_PRESETS[path]]
        if wanted is not None:
            _check_same_architecture(official, wanted, f"official checkpoint {path!r}")
        config = wanted or official
        model = build_stemseg(config, **options)
        file = download_official_checkpoint(
            path, check=lambda file: load_official_weights(model, file)
        )
        return load_official_weights(model, file), config
    if os.path.isdir(path):
        raise ValueError(f"checkpoint {path} is a folder, expected a checkpoint file")
    payload = read_checkpoint_file(path)
    if is_model_checkpoint(payload):
        model = model_from_checkpoint(payload, path, **options)
        if wanted is None:
            return model, model.config
        _check_same_architecture(model.config, wanted, f"checkpoint {path}")
        return model, dataclasses.replace(model.config, inference=wanted.inference)
    official_state_dict(payload, f"checkpoint {path}")  # named tensors, or one clear error
    if wanted is None:
        raise ValueError(
            f"checkpoint {path} is an official STEm-Seg file, which records no "
            f"preset: pass preset= (--preset), e.g. {', '.join(sorted(PRESETS))}"
        )
    model = build_stemseg(wanted, **options)
    return load_official_weights(model, payload), wanted


def _replace_inference(inference: InferenceConfig, overrides: Mapping) -> InferenceConfig:
    """``inference`` with the named fields replaced; unknown names are an error listing the
    known ones."""
    known = {f.name for f in dataclasses.fields(InferenceConfig)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"unknown inference settings {unknown}; known: {sorted(known)}")
    return dataclasses.replace(inference, **overrides)


class Predictor:
    """Video instance segmentation with a STEm-Seg network, one video at a time.

    Args:
        checkpoint_or_model: see :func:`load_model` (a built network, our checkpoint, an
            official checkpoint file with ``preset``, or a named official checkpoint).
        preset (str or STEmSegConfig, optional): the preset whose network and inference
            constants apply (clip length and overlap, thresholds, sizes, clustering resolution).
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...
        backend: ``"auto"`` (Triton on CUDA, the PyTorch references on CPU), ``"triton"`` or
            ``"reference"``: the clustering kernel and, for a network built here, the fused
            decoder blocks.
        precision: ``"auto"`` (bf16 autocast on CUDA, fp32 on CPU), ``"fp32"``, ``"bf16"``,
            ``"fp16"``: the network's autocast dtype; its outputs, the clustering and the masks
            are float32 whatever it is.
        category_names (dict[int, str], optional): class id -> name, for overlays; default:
            the names the checkpoint's config carries, if any.
        inference (dict, optional): inference constants to replace in the preset, e.g.
            ``{"clip_overlap": 2, "min_seediness": 0.7, "distance_rule": "paper"}`` (the
            official command line's -fo, -msp, ...; field names of ``InferenceConfig``).
        progress (bool): a tqdm bar per video.
        cuda_graphs (bool): capture each clip shape's heads and clustering in CUDA graphs
            once and replay them (:mod:`stemseg_fast.inference.graphs`): the same outputs
            with one launch instead of hundreds per clip. Needs a CUDA device and the Triton
            backend. Off by default until a GPU run has compared it with the direct calls.
    """

    def __init__(
        self,
        checkpoint_or_model: Union[nn.Module, str, os.PathLike],
        *,
        preset: Preset = None,
        device: Union[str, torch.device] = "auto",
        backend: str = "auto",
        precision: str = "auto",
        category_names: Optional[Mapping[int, str]] = None,
        inference: Optional[Mapping[str, object]] = None,
        progress: bool = False,
        cuda_graphs: bool = False,
    ):
        self.device = resolve_device(device)
        if backend not in BACKENDS:
            raise ValueError(
                f"backend must be one of {', '.join(map(repr, BACKENDS))}, got {backend!r}"
            )
        try:
            resolved = resolve_backend(backend, torch.empty(0, device=self.device))
        except RuntimeError as error:
            raise ValueError(str(error)) from None
        if precision not in PRECISIONS:
            raise ValueError(
                f"precision must be one of {', '.join(map(repr, PRECISIONS))}, got {precision!r}"
            )
        if precision == "auto":
            precision = "bf16" if self.device.type == "cuda" else "fp32"
        if cuda_graphs and (self.device.type != "cuda" or resolved != "triton"):
            raise ValueError(
                f"cuda_graphs needs a CUDA device and the triton backend, got device "
                f"{self.device} with the {resolved} backend"
            )
        self.backend = backend
        self.precision = precision
        self.cuda_graphs = cuda_graphs
        model, self.config = load_model(
            checkpoint_or_model, preset, fused=resolved == "triton", backend=backend
        )
        if inference:
            self.config = dataclasses.replace(
                self.config, inference=_replace_inference(self.config.inference, inference)
            )
        if (
            self.config.inference.foreground_source == "semantic"
            and self.config.semantic_decoder is None
        ):
            raise ValueError(
                f"preset {self.config.name!r} takes the foreground from a semantic "
                f"head it does not have (use foreground_source='seediness')"
            )
        self.model = model.to(self.device).eval()
        self.rule = default_rule(self.config)
        if category_names is None and self.config.category_names:
            category_names = dict(enumerate(self.config.category_names, start=1))
        self.category_names = category_names
        self.progress = progress
        # One per predictor: captured graphs serve every later video of their clip shapes.
        self.clip_steps = ClipSteps(
            self.model,
            self.config,
            backend=backend,
            autocast_dtype=_AUTOCAST_DTYPES[precision],
            cuda_graphs=cuda_graphs,
        )

    def predict(
        self,
        video: VideoInput,
        *,
        rgb: bool = False,
        name: Optional[str] = None,
        video_id: Optional[int] = None,
        fps: Optional[float] = None,
        progress: Union[bool, object, None] = None,
    ) -> VideoPrediction:
        """Run the pipeline on one video; every stitched track, ready for any rule.

        Args:
            video: a video file path, a folder of frames, an array/tensor [T, H, W, 3] uint8
                (BGR unless ``rgb=True``), or a :class:`~stemseg_fast.io.video.FrameSource`.
            name, video_id, fps: override the source's (names outputs; YouTube-VIS id; overlay
                frame rate).
            progress: True for a bar of this video, False for none, or a bar of the caller's
                (anything with tqdm's ``update(n)``) to advance by each decoded frame; default
                the predictor's ``progress``.
        """
        source = open_video(video, rgb=rgb, name=name, fps=fps)
        progress = self.progress if progress is None else progress
        bar = None if progress is None or isinstance(progress, bool) else progress
        if progress is True:
            from tqdm import tqdm

            bar = tqdm(total=source.num_frames, desc=source.name, unit="frame", leave=False)
        try:
            prediction = self._video_run(source, progress=bar).run()
            if progress is True and bar.total != prediction.num_frames:  # a misstated length
                bar.total = prediction.num_frames
                bar.refresh()
        finally:
            if progress is True:
                bar.close()
        if video_id is None:
            video_id = prediction.video_id
        return dataclasses.replace(
            prediction, rule=self.rule, video_id=video_id, category_names=self.category_names
        )

    def stream(
        self,
        video: VideoInput,
        *,
        rgb: bool = False,
        name: Optional[str] = None,
        fps: Optional[float] = None,
        keep_images: bool = False,
    ) -> Iterator[StreamedFrame]:
        """Frames with their tracks as soon as they are final (about one clip after they are
        decoded): for live sources (:class:`~stemseg_fast.io.video.CaptureSource`, any
        iterable of frames) and videos too long to hold. Memory stays flat however long the
        stream runs: nothing is kept of a track once it has ended.

        Tracks are numbered 1, 2, ... by first appearance; a track's category is its best class
        so far (the YouTube-VIS rule over the frames seen; the offline rules in :meth:`predict`
        choose over the whole video, and select and score tracks, which a stream cannot).

        Args:
            video: anything :meth:`predict` takes, plus a camera or URL source, or an iterable
                of [H, W, 3] uint8 frames whose length is unknown.
            keep_images: each frame carries its decoded image (e.g. to draw an overlay).
        Yields:
            :class:`~stemseg_fast.inference.pipeline.StreamedFrame`, in frame order.
        """
        source = open_video(video, rgb=rgb, name=name, fps=fps)
        yield from self._video_run(source, streaming=True, keep_images=keep_images).stream()

    def _video_run(self, source: FrameSource, **options) -> VideoRun:
        return VideoRun(
            self.model,
            self.config,
            source,
            device=self.device,
            backend=self.backend,
            autocast_dtype=_AUTOCAST_DTYPES[self.precision],
            steps=self.clip_steps,
            **options,
        )

    def __call__(
        self,
        video: VideoInput,
        *,
        rule: Optional[str] = None,
        rgb: bool = False,
        name: Optional[str] = None,
        video_id: Optional[int] = None,
        fps: Optional[float] = None,
    ) -> VideoTracks:
        """The tracks of one video under ``rule`` (default: the preset's); see :meth:`predict`
        and :meth:`VideoPrediction.select`."""
        prediction = self.predict(video, rgb=rgb, name=name, video_id=video_id, fps=fps)
        return prediction.select(rule)

    def __repr__(self):
        return (
            f"Predictor(preset={self.config.name!r}, device={str(self.device)!r}, "
            f"backend={self.backend!r}, precision={self.precision!r}, rule={self.rule!r})"
        )
