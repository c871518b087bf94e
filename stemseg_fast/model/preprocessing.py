"""Input pre-processing (official: data/inference_image_loader.py, data/common.py
``compute_resize_params_2``, structures/image_list.py).

BGR frames in 0..255 (OpenCV order, no /255), resized so the short side is ``min_dim`` unless
the long side would then exceed ``max_dim`` (then the long side is ``max_dim``), bilinear
(align_corners=False); minus the Caffe mean (no std); zero-padded bottom/right to a multiple of
32, i.e. padding equals the mean colour in pixel space.
"""

import functools
import math
from typing import NamedTuple, Tuple

import torch
import torch.nn.functional as F

IMAGE_MEAN_BGR = (102.9801, 115.9465, 122.7717)
SIZE_DIVISIBILITY = 32


def resized_size(height: int, width: int, min_dim: int, max_dim: int) -> Tuple[int, int]:
    """(new_height, new_width) of the official resize rule, rounded with Python's ``round``."""
    if height < 1 or width < 1:
        raise ValueError(f"frame size must be positive, got {height}x{width}")
    scale = min_dim / min(height, width)
    if max(height, width) * scale > max_dim:
        scale = max_dim / max(height, width)
    return round(scale * height), round(scale * width)


def padded_size(height: int, width: int, divisor: int = SIZE_DIVISIBILITY) -> Tuple[int, int]:
    """(H, W) rounded up to multiples of ``divisor``."""
    return math.ceil(height / divisor) * divisor, math.ceil(width / divisor) * divisor


class PreprocessedClip(NamedTuple):
    clip: torch.Tensor  # [3, T, H_pad, W_pad] float32, mean subtracted, zero padded
    resized_size: tuple  # (H, W) before padding: crop outputs to this, then resize back


@functools.lru_cache(maxsize=None)
def _image_mean(device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """[1, 3, 1, 1] mean on ``device``, made once: a host-to-device copy per clip would make the
    host wait for the device every clip."""
    return torch.tensor(IMAGE_MEAN_BGR, dtype=dtype, device=device).view(1, 3, 1, 1)


def preprocess_clip(frames: torch.Tensor, min_dim: int, max_dim: int) -> PreprocessedClip:
    """Official pre-processing of T frames.

    Args:
        frames (Tensor[T, H, W, 3], uint8 or float): BGR frames in 0..255 (OpenCV layout).
        min_dim, max_dim: resize rule bounds (see the presets' ``inference``).
    """
    if frames.dim() != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must have shape [T, H, W, 3] (BGR), got {list(frames.shape)}")
    height, width = frames.shape[1:3]
    new_height, new_width = resized_size(height, width, min_dim, max_dim)
    images = frames.permute(0, 3, 1, 2).float()  # [T, 3, H, W]
    if (new_height, new_width) != (height, width):
        images = F.interpolate(
            images, size=(new_height, new_width), mode="bilinear", align_corners=False
        )
    images = images - _image_mean(images.device, images.dtype)
    pad_height, pad_width = padded_size(new_height, new_width)
    images = F.pad(images, (0, pad_width - new_width, 0, pad_height - new_height))
    return PreprocessedClip(images.transpose(0, 1).contiguous(), (new_height, new_width))
