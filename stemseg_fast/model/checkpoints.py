"""Official checkpoints and our own save format.

Official files (sabarim/STEm-Seg README: https://omnomnom.vision.rwth-aachen.de/data/STEm-Seg/
models/): full models keep their weights under ``'model'`` (beside optimizer, scheduler,
logger and iteration state), saved from GPU tensors in PyTorch's legacy (non-zip) format; the
Mask R-CNN backbone files hold bare ``body.*`` / ``fpn.*`` keys. Both load with
``torch.load(map_location="cpu", weights_only=True)``: no code is unpickled.

Key mapping (:func:`remap_official_state_dict`) is a short list of rename rules, then a strict
check: every key of the model filled, no key left over, every shape equal; any difference is
one error naming the keys. Two official buffers that our model does not keep are accepted and
checked instead: ``embedding_head.time_scale`` (must be 1.0, the only value the official code
uses) and ``embedding_loss_criterion.free_dim_bandwidths`` (the loss's free-dim precisions,
must equal the preset's ``free_dim_precision``).

Our format (:func:`save_checkpoint` / :func:`load_checkpoint`): ``{"format", "config",
"state_dict"}``, the config as plain values, written to a temporary file then ``os.replace``d.
"""
import os
import re
from typing import Dict, Mapping, Optional

import torch

from stemseg_fast.fileio import atomic_output

from .presets import STEmSegConfig
from .stemseg import STEmSeg, build_stemseg

CHECKPOINT_FORMAT = "stemseg_fast/1"

OFFICIAL_MODELS_URL = "https://omnomnom.vision.rwth-aachen.de/data/STEm-Seg/models"
OFFICIAL_CHECKPOINT_URLS = {
    name: f"{OFFICIAL_MODELS_URL}/{name}.pth"
    for name in ("youtube_vis", "davis", "kitti_mots", "mask_rcnn_R_101_FPN_backbone",
                 "mask_rcnn_R_50_FPN_backbone")
}
# Which preset each named full checkpoint was trained as.
OFFICIAL_CHECKPOINT_PRESETS = {"youtube_vis": "ytvis", "davis": "davis",
                               "kitti_mots": "kitti_mots"}

# (pattern, replacement) applied in order to every official key.
OFFICIAL_RENAME_RULES = (
    (r"^module\.", ""),  # saved from DistributedDataParallel
    (r"^(body|fpn)\.", r"backbone.\1."),  # bare Mask R-CNN backbone files
    # Decoder bodies sit in a `decoder` submodule of each head; the output convs do not.
    (r"^(embedding_head|seediness_head|semseg_head)\.(block_(?:32|16|8|4)x|conv_(?:16|8|4))\.",
     r"\1.decoder.\2."),
)
TIME_SCALE_KEY = "embedding_head.time_scale"
FREE_DIM_BANDWIDTHS_KEY = "embedding_loss_criterion.free_dim_bandwidths"


class CheckpointMismatchError(KeyError):
    """A state dict that does not fit the model: missing, unexpected or mis-shaped keys."""

    def __str__(self):
        return self.args[0]


def rename_official_key(key: str) -> str:
    for pattern, replacement in OFFICIAL_RENAME_RULES:
        key = re.sub(pattern, replacement, key)
    return key


def _official_state_dict(checkpoint):
    """The weights of an official file: under 'model' for full models, bare for backbones."""
    if isinstance(checkpoint, Mapping) and "model" in checkpoint and isinstance(
            checkpoint["model"], Mapping):
        return checkpoint["model"]
    return checkpoint


def _check_official_buffers(state_dict, free_dim_precision):
    time_scale = state_dict.get(TIME_SCALE_KEY)
    if time_scale is not None and not torch.allclose(time_scale.float().cpu(),
                                                     torch.tensor(1.0)):
        raise ValueError(f"{TIME_SCALE_KEY} must be 1.0 (the only official value, which our "
                         f"grid uses), got {time_scale.tolist()}")
    bandwidths = state_dict.get(FREE_DIM_BANDWIDTHS_KEY)
    if bandwidths is not None and bandwidths.numel() and not torch.allclose(
            bandwidths.double().cpu(), torch.tensor(free_dim_precision, dtype=torch.float64)):
        raise ValueError(f"{FREE_DIM_BANDWIDTHS_KEY} must equal the preset's free_dim_precision "
                         f"{free_dim_precision:.6g}, got {bandwidths.flatten().tolist()}")


def remap_official_state_dict(checkpoint, *,
                              free_dim_precision: float = 1 / 0.3**2) -> Dict[str, torch.Tensor]:
    """An official checkpoint (full file dict, its 'model' dict, or a bare backbone dict) as a
    state dict with our key names. The two non-parameter buffers are checked and dropped."""
    state_dict = _official_state_dict(checkpoint)
    _check_official_buffers(state_dict, free_dim_precision)
    remapped = {}
    for key, value in state_dict.items():
        if key in (TIME_SCALE_KEY, FREE_DIM_BANDWIDTHS_KEY):
            continue
        remapped[rename_official_key(key)] = value
    return remapped


def _strict_load(module, state_dict, what):
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    mismatched = sorted(f"{key}: checkpoint {list(state_dict[key].shape)} vs model "
                        f"{list(expected[key].shape)}" for key in set(expected) & set(state_dict)
                        if tuple(state_dict[key].shape) != tuple(expected[key].shape))
    if missing or unexpected or mismatched:
        problems = []
        for label, keys in (("missing", missing), ("unexpected", unexpected),
                            ("shape mismatch", mismatched)):
            if keys:
                problems.append(f"{label} ({len(keys)}): {', '.join(keys)}")
        raise CheckpointMismatchError(f"{what} does not fit the model: " + "; ".join(problems))
    module.load_state_dict(state_dict, strict=True)


def read_checkpoint_file(path, *, allowed_globals=()):
    """``torch.load`` on the CPU with ``weights_only=True`` (legacy and zip formats).

    ``allowed_globals`` extends the safe-unpickling allow-list (e.g. a class an optimizer state
    holds); nothing else is ever unpickled.
    """
    try:
        with torch.serialization.safe_globals(list(allowed_globals)):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # pickle.UnpicklingError and friends: say which file and why
        if "weights_only" in str(error) or "Unsupported global" in str(error):
            raise ValueError(f"{path} holds objects other than tensors and plain containers; "
                             f"refusing to unpickle them (weights_only=True): {error}") from None
        raise


def load_official_weights(model: STEmSeg, checkpoint) -> STEmSeg:
    """Fill ``model`` from an official checkpoint (a path or an already loaded object).

    A full model file must fill every parameter and buffer of ``model``; a backbone file
    (``body.*`` / ``fpn.*``) fills exactly ``model.backbone`` and leaves the heads as they are.
    Raises :class:`CheckpointMismatchError` listing missing / unexpected / mis-shaped keys.
    """
    if isinstance(checkpoint, (str, os.PathLike)):
        source = str(checkpoint)
        checkpoint = read_checkpoint_file(checkpoint)
    else:
        source = "checkpoint"
    free_dim_precision = model.config.free_dim_precision if model.config else 1 / 0.3**2
    state_dict = remap_official_state_dict(checkpoint, free_dim_precision=free_dim_precision)
    if state_dict and all(key.startswith("backbone.") for key in state_dict):
        backbone_state = {key[len("backbone."):]: value for key, value in state_dict.items()}
        _strict_load(model.backbone, backbone_state, f"backbone weights of {source}")
    else:
        _strict_load(model, state_dict, source)
    return model


def save_checkpoint(model: STEmSeg, path, config: Optional[STEmSegConfig] = None):
    """Write ``{"format", "config", "state_dict"}`` atomically (temporary file + os.replace)."""
    config = config or model.config
    if config is None:
        raise ValueError("config must be given for a model not built by build_stemseg")
    payload = {"format": CHECKPOINT_FORMAT, "config": config.to_dict(),
               "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}}
    with atomic_output(path) as temporary:
        torch.save(payload, temporary)


def load_checkpoint(path, **build_options) -> STEmSeg:
    """A model from :func:`save_checkpoint`'s file; ``build_options`` go to
    :func:`build_stemseg` (``fused``, ``backend``, ``channels_last``)."""
    payload = read_checkpoint_file(path)
    if not isinstance(payload, Mapping) or payload.get("format") != CHECKPOINT_FORMAT:
        found = payload.get("format") if isinstance(payload, Mapping) else type(payload).__name__
        raise ValueError(f"{path} is not a {CHECKPOINT_FORMAT} checkpoint (format {found!r}); "
                         "official files load with load_official_weights")
    config = STEmSegConfig.from_dict(payload["config"])
    model = build_stemseg(config, **build_options)
    _strict_load(model, payload["state_dict"], str(path))
    return model


def download_official_checkpoint(name: str, *, cache_dir=None, progress: bool = True,
                                 urls: Mapping[str, str] = OFFICIAL_CHECKPOINT_URLS) -> str:
    """Path of a named official file, downloaded once into ``<torch hub>/checkpoints/stemseg``.

    Args:
        name: one of ``youtube_vis``, ``davis``, ``kitti_mots``,
            ``mask_rcnn_R_101_FPN_backbone``, ``mask_rcnn_R_50_FPN_backbone``.
        cache_dir: folder to keep files in (default under ``torch.hub.get_dir()``).
        progress: show a progress bar while downloading.
        urls: name -> URL (the official links by default).
    """
    if name not in urls:
        raise ValueError(f"name must be one of {sorted(urls)}, got {name!r}")
    cache_dir = cache_dir or os.path.join(torch.hub.get_dir(), "checkpoints", "stemseg")
    os.makedirs(cache_dir, exist_ok=True)
    path = os.path.join(cache_dir, f"{name}.pth")
    if not os.path.exists(path):
        # Writes to a temporary file and moves it into place when complete.
        torch.hub.download_url_to_file(urls[name], path, progress=progress)
    return path


def stemseg_from_official(name: str, *, cache_dir=None, progress: bool = True,
                          urls: Mapping[str, str] = OFFICIAL_CHECKPOINT_URLS,
                          **build_options) -> STEmSeg:
    """Build the preset of a named official model and load its released weights."""
    from .presets import PRESETS

    if name not in OFFICIAL_CHECKPOINT_PRESETS:
        raise ValueError(f"name must be one of {sorted(OFFICIAL_CHECKPOINT_PRESETS)}, got "
                         f"{name!r}")
    model = build_stemseg(PRESETS[OFFICIAL_CHECKPOINT_PRESETS[name]], **build_options)
    path = download_official_checkpoint(name, cache_dir=cache_dir, progress=progress, urls=urls)
    return load_official_weights(model, path)
