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

import hashlib
import os
import re
from typing import Any, Callable, Dict, Mapping, Optional, Sequence

import torch

from stemseg_fast.io.files import PathLike, atomic_output, remove_partial_outputs

from .presets import STEmSegConfig
from .stemseg import STEmSeg, build_stemseg


CHECKPOINT_FORMAT = "stemseg_fast/1"
# The tiny preset trained on the synthetic videos (training/configs/tiny_synthetic.yaml).
BUNDLED_CHECKPOINT = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "assets", "tiny_synthetic.pth"
)

OFFICIAL_MODELS_URL = "https://omnomnom.vision.rwth-aachen.de/data/STEm-Seg/models"
OFFICIAL_CHECKPOINT_URLS = {
    name: f"{OFFICIAL_MODELS_URL}/{name}.pth"
    for name in (
        "youtube_vis",
        "davis",
        "kitti_mots",
        "mask_rcnn_R_101_FPN_backbone",
        "mask_rcnn_R_50_FPN_backbone",
    )
}
# Which preset each named full checkpoint was trained as.
OFFICIAL_CHECKPOINT_PRESETS = {
    "youtube_vis": "youtube_vis",
    "davis": "davis",
    "kitti_mots": "kitti_mots",
}
# What each official file was trained on (official configs; stemseg_reference.md §5).
OFFICIAL_CHECKPOINT_TRAINING = {
    "youtube_vis": "YouTube-VIS 2019 train with COCO and Pascal VOC pseudo-clips, 160k iterations",
    "davis": "DAVIS 2017 train with COCO, YouTube-VIS and VOC (class-agnostic), two stages",
    "kitti_mots": "Mapillary pseudo-clips, then KITTI-MOTS train (+ MOTSChallenge 0002)",
    "mask_rcnn_R_101_FPN_backbone": "Mask R-CNN on COCO: the backbone + FPN training starts from",
    "mask_rcnn_R_50_FPN_backbone": "Mask R-CNN on COCO: the R-50 backbone + FPN",
}

# (pattern, replacement) applied in order to every official key.
OFFICIAL_RENAME_RULES = (
    (r"^module\.", ""),  # saved from DistributedDataParallel
    (r"^(body|fpn)\.", r"backbone.\1."),  # bare Mask R-CNN backbone files
    # Decoder bodies sit in a `decoder` submodule of each head; the output convs do not.
    (
        r"^(embedding_head|seediness_head|semseg_head)\.(block_(?:32|16|8|4)x|conv_(?:16|8|4))\.",
        r"\1.decoder.\2.",
    ),
)
TIME_SCALE_KEY = "embedding_head.time_scale"
FREE_DIM_BANDWIDTHS_KEY = "embedding_loss_criterion.free_dim_bandwidths"


class CheckpointMismatchError(KeyError, ValueError):
    """A state dict that does not fit the model: missing, unexpected or mis-shaped keys."""

    def __str__(self):
        return self.args[0]


def rename_official_key(key: str) -> str:
    for pattern, replacement in OFFICIAL_RENAME_RULES:
        key = re.sub(pattern, replacement, key)
    return key


def official_state_dict(checkpoint: Any, source: str = "checkpoint") -> Mapping[str, torch.Tensor]:
    """The weights of an official file: under 'model' for full models, bare for backbones."""
    if (
        isinstance(checkpoint, Mapping)
        and "model" in checkpoint
        and isinstance(checkpoint["model"], Mapping)
    ):
        checkpoint = checkpoint["model"]
    return check_state_dict(checkpoint, source)


def _check_official_buffers(state_dict, free_dim_precision):
    time_scale = state_dict.get(TIME_SCALE_KEY)
    if time_scale is not None and not torch.allclose(time_scale.float().cpu(), torch.tensor(1.0)):
        raise ValueError(
            f"{TIME_SCALE_KEY} must be 1.0 (the only official value, which our "
            f"grid uses), got {time_scale.tolist()}"
        )
    bandwidths = state_dict.get(FREE_DIM_BANDWIDTHS_KEY)
    if (
        bandwidths is not None
        and bandwidths.numel()
        and not torch.allclose(
            bandwidths.double().cpu(), torch.tensor(free_dim_precision, dtype=torch.float64)
        )
    ):
        raise ValueError(
            f"{FREE_DIM_BANDWIDTHS_KEY} must equal the preset's free_dim_precision "
            f"{free_dim_precision:.6g}, got {bandwidths.flatten().tolist()}"
        )


def remap_official_state_dict(
    checkpoint: Any, *, free_dim_precision: float = 1 / 0.3**2, source: str = "checkpoint"
) -> Dict[str, torch.Tensor]:
    """An official checkpoint (full file dict, its 'model' dict, or a bare backbone dict) as a
    state dict with our key names. The two non-parameter buffers are checked and dropped."""
    state_dict = official_state_dict(checkpoint, source)
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
    mismatched = sorted(
        f"{key}: checkpoint {list(state_dict[key].shape)} vs model {list(expected[key].shape)}"
        for key in set(expected) & set(state_dict)
        if tuple(state_dict[key].shape) != tuple(expected[key].shape)
    )
    if missing or unexpected or mismatched:
        problems = []
        for label, keys in (
            ("missing", missing),
            ("unexpected", unexpected),
            ("shape mismatch", mismatched),
        ):
            if keys:
                problems.append(f"{label} ({len(keys)}): {', '.join(keys)}")
        raise CheckpointMismatchError(f"{what} does not fit the model: " + "; ".join(problems))
    module.load_state_dict(state_dict, strict=True)


_ZIP_MAGIC = b"PK\x03\x04"
_PICKLE_PROTOCOL_2 = b"\x80\x02"  # how torch's legacy (non-zip) format opens
_UNSUPPORTED_GLOBAL = re.compile(r"Unsupported global: GLOBAL ([\w.]+)")


def read_checkpoint_file(path: PathLike, *, allowed_globals: Sequence[type] = ()) -> Any:
    """``torch.load`` on the CPU with ``weights_only=True`` (legacy and zip formats).

    ``allowed_globals`` extends the safe-unpickling allow-list (e.g. a class an optimizer state
    holds); nothing else is ever unpickled. Every failure is one ``ValueError`` line naming the
    file: not a PyTorch file at all, damaged or truncated, or holding Python objects.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    with open(path, "rb") as handle:
        head = handle.read(4)
    if not head.startswith((_ZIP_MAGIC, _PICKLE_PROTOCOL_2)):
        raise ValueError(
            f"checkpoint {path} is not a PyTorch checkpoint (neither torch.save's "
            f"zip archive nor its legacy format)"
        )
    try:
        with torch.serialization.safe_globals(list(allowed_globals)):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # pickle.UnpicklingError, RuntimeError, EOFError and friends
        message = str(error)
        refused = _UNSUPPORTED_GLOBAL.search(message)
        if refused or "weights_only" in message:
            what = f" ({refused.group(1)})" if refused else ""
            raise ValueError(
                f"checkpoint {path} holds Python objects other than tensors and "
                f"plain containers{what}; refusing to unpickle them "
                f"(weights_only=True)"
            ) from None
        reason = message.splitlines()[0].split(". ")[0] if message else type(error).__name__
        raise ValueError(f"checkpoint {path} is damaged or truncated: {reason}") from None


def check_state_dict(state_dict: Any, source: str) -> Mapping[str, torch.Tensor]:
    """``state_dict`` if it maps names to tensors with finite floating values; a ``ValueError``
    naming ``source`` and the first offending entry otherwise (a diverged or damaged model
    would run and silently find nothing)."""
    if not isinstance(state_dict, Mapping):
        raise ValueError(
            f"{source} holds a {type(state_dict).__name__}, expected a state dict "
            f"(names -> tensors) or a training checkpoint with a 'model' entry"
        )
    for key, value in state_dict.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise ValueError(
                f"{source}: entry {key!r} is a {type(value).__name__}, expected named tensors only"
            )
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise ValueError(
                f"{source}: weight {key!r} holds NaN or infinite values (a diverged "
                f"or damaged model)"
            )
    return state_dict


def load_official_weights(model: STEmSeg, checkpoint: Any) -> STEmSeg:
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
    state_dict = remap_official_state_dict(
        checkpoint, free_dim_precision=free_dim_precision, source=source
    )
    if state_dict and all(key.startswith("backbone.") for key in state_dict):
        backbone_state = {key[len("backbone.") :]: value for key, value in state_dict.items()}
        _strict_load(model.backbone, backbone_state, f"backbone weights of {source}")
    else:
        _strict_load(model, state_dict, source)
    return model


def save_checkpoint(model: STEmSeg, path: PathLike, config: Optional[STEmSegConfig] = None) -> None:
    """Write ``{"format", "config", "state_dict"}`` atomically (temporary file + os.replace)."""
    config = config or model.config
    if config is None:
        raise ValueError("config must be given for a model not built by build_stemseg")
    payload = {
        "format": CHECKPOINT_FORMAT,
        "config": config.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    with atomic_output(path) as temporary:
        torch.save(payload, temporary)


def is_model_checkpoint(payload: Any) -> bool:
    """Whether a loaded checkpoint file is one of ours (:func:`save_checkpoint`'s format: it
    carries its config), as opposed to an official state dict."""
    return isinstance(payload, Mapping) and payload.get("format") == CHECKPOINT_FORMAT


def load_checkpoint(path: PathLike, **build_options: Any) -> STEmSeg:
    """A model from :func:`save_checkpoint`'s file; ``build_options`` go to
    :func:`build_stemseg` (``fused``, ``backend``, ``channels_last``)."""
    return model_from_checkpoint(read_checkpoint_file(path), path, **build_options)


def model_from_checkpoint(payload: Mapping, path: PathLike, **build_options: Any) -> STEmSeg:
    """The model of an already read checkpoint file of ours (``path`` names it in errors)."""
    if not is_model_checkpoint(payload):
        found = payload.get("format") if isinstance(payload, Mapping) else type(payload).__name__
        raise ValueError(
            f"{path} is not a {CHECKPOINT_FORMAT} checkpoint (format {found!r}); "
            "official files load with load_official_weights"
        )
    model = build_stemseg(checkpoint_config(payload, path), **build_options)
    _strict_load(
        model, check_state_dict(payload.get("state_dict"), f"checkpoint {path}"), str(path)
    )
    return model


def checkpoint_config(payload: Mapping, path: PathLike) -> STEmSegConfig:
    """The network config stored in one of our checkpoints, or one ``ValueError`` saying why
    it is not a valid one."""
    values = payload.get("config")
    if not isinstance(values, Mapping):
        raise ValueError(f"checkpoint {path} has no config mapping")
    try:
        return STEmSegConfig.from_dict(values)
    except (TypeError, ValueError) as error:
        raise ValueError(f"checkpoint {path}: its config is not valid: {error}") from None


def _sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_readable_official_file(path):
    official_state_dict(read_checkpoint_file(path), f"downloaded checkpoint {path}")


def official_checkpoint_cache_dir(cache_dir: Optional[PathLike] = None) -> str:
    """Where named official checkpoints are kept: ``<torch hub dir>/checkpoints/stemseg``."""
    return os.fspath(cache_dir or os.path.join(torch.hub.get_dir(), "checkpoints", "stemseg"))


def download_official_checkpoint(
    name: str,
    *,
    cache_dir: Optional[PathLike] = None,
    progress: bool = True,
    urls: Mapping[str, str] = OFFICIAL_CHECKPOINT_URLS,
    check: Optional[Callable[[str], object]] = None,
) -> str:
    """Path of a named official file, downloaded once into ``<torch hub>/checkpoints/stemseg``.

    The download goes to a temporary name and is kept only if ``check(temporary_path)`` passes
    (default: it reads as a checkpoint of finite tensors; the loaders pass a check that fills
    the model, so every key and shape is verified too). Its SHA-256 is then recorded beside
    it (``<name>.pth.sha256``) and verified on every later use, so a damaged or replaced cache
    file is an error, never a model. The project knows no published hashes of the official
    files (their README gives none), so the first download is trusted once it passes ``check``.

    Args:
        name: one of ``youtube_vis``, ``davis``, ``kitti_mots``,
            ``mask_rcnn_R_101_FPN_backbone``, ``mask_rcnn_R_50_FPN_backbone``.
        cache_dir: folder to keep files in (default under ``torch.hub.get_dir()``).
        progress: show a progress bar while downloading.
        urls: name -> URL (the official links by default).
        check: raises ``ValueError`` for a file that must not be cached.
    """
    if name not in urls:
        raise ValueError(f"name must be one of {sorted(urls)}, got {name!r}")
    cache_dir = official_checkpoint_cache_dir(cache_dir)
    path = os.path.join(cache_dir, f"{name}.pth")
    digest_path = path + ".sha256"
    check = check or _check_readable_official_file
    if not os.path.exists(path):
        os.makedirs(cache_dir, exist_ok=True)
        remove_partial_outputs(cache_dir)
        with atomic_output(path) as temporary:
            try:
                torch.hub.download_url_to_file(urls[name], temporary, progress=progress)
            except (OSError, ValueError) as error:  # URLError is an OSError
                raise ValueError(
                    f"cannot download official checkpoint {name!r} from {urls[name]} ({error}); "
                    f"download it by hand and place it at {path}, or pass the file itself with "
                    f"its preset"
                ) from None
            check(temporary)
            _record_digest(digest_path, _sha256(temporary))
        return path
    recorded = _recorded_digest(digest_path)
    if recorded is None:  # placed by hand, or the run that downloaded it stopped here
        check(path)
        _record_digest(digest_path, _sha256(path))
    elif recorded != _sha256(path):
        raise ValueError(
            f"cached checkpoint {path} does not match the SHA-256 recorded when it "
            f"was downloaded and checked ({digest_path}); delete both files to "
            f"download it again"
        )
    return path


def _record_digest(digest_path, digest):
    with atomic_output(digest_path) as temporary:
        with open(temporary, "w", encoding="ascii") as handle:
            handle.write(digest + "\n")


def _recorded_digest(digest_path) -> Optional[str]:
    try:
        with open(digest_path, encoding="ascii") as handle:
            return handle.read().strip()
    except (OSError, UnicodeDecodeError):
        return None


def stemseg_from_official(
    name: str,
    *,
    cache_dir: Optional[PathLike] = None,
    progress: bool = True,
    urls: Mapping[str, str] = OFFICIAL_CHECKPOINT_URLS,
    **build_options: Any,
) -> STEmSeg:
    """Build the preset of a named official model and load its released weights."""
    from .presets import PRESETS

    if name not in OFFICIAL_CHECKPOINT_PRESETS:
        raise ValueError(f"name must be one of {sorted(OFFICIAL_CHECKPOINT_PRESETS)}, got {name!r}")
    model = build_stemseg(PRESETS[OFFICIAL_CHECKPOINT_PRESETS[name]], **build_options)
    path = download_official_checkpoint(
        name,
        cache_dir=cache_dir,
        progress=progress,
        urls=urls,
        check=lambda file: load_official_weights(model, file),
    )
    return load_official_weights(model, path)
