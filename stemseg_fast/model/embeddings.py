"""Embeddings of the STEm-Seg head: embedding modes, the spatio-temporal coordinate grid, mixing
(official: modeling/embedding_utils.py), and the two numbers that turn the head's outputs into
Gaussian precisions.

An embedding mode names what each of the E embedding channels means. Grid channels come first
in the order (t, y, x) -- t only for modes that contain it -- followed by F "free" channels:

    mode   E  F  channels               mode    E  F  channels
    xy     2  0  y x                    xytf    4  1  t y x f
    ff     2  2  f f                    xyff    4  2  y x f f
    xyt    3  0  t y x                  xytff   5  2  t y x f f
    xyf    3  1  y x f                  xyfff   5  3  y x f f f

The grid is built on the decoder output's (padded, stride-4) size: the short image side spans
[-1, 1] and the long side [-H/W, H/W] (or W/H), endpoints included, so the spacing is isotropic;
t spans [-time_scale, time_scale] with the official buffer value 1.0. Free channels carry no
grid. The network's raw offsets are squashed as tanh(0.25 * z) (official TANH_ACTIVATION) and
added to the grid, so an offset never moves an embedding by half the short side or more.

The official grid function also knows modes ``x`` and ``xyffff``, but its dimension-count helpers
do not, so no official model can use them; they are left out here.

Mixing is one elementwise pass (read z, write e: 2 x 4 bytes per element in fp32), which a
kernel cannot beat by more than fusing it into the head's 1x1x1 conv; it stays PyTorch.

Precisions: the head's ``conv_variance`` predicts raw log-precisions r of the E - F grid dims;
a voxel's precision is ``PRECISION_SCALE * exp(r)`` (official, no clamp), and the F free dims
get the fixed ``FREE_DIM_PRECISION`` (official FREE_DIM_STDS = [0.3, 0.3]). The model owns
these numbers; the kernels take them as arguments (:func:`stemseg_fast.kernels.
instance_gaussians`, :func:`stemseg_fast.kernels.embedding_loss`).
"""

from dataclasses import dataclass
from typing import Union

import torch

from stemseg_fast.kernels._checks import FLOAT_DTYPES, check_tensor

TANH_PRESCALE = 0.25
PRECISION_SCALE = 10.0  # precision = 10 * exp(raw log-precision), no clamp (official)
FREE_DIM_PRECISION = 1.0 / 0.3**2  # FREE_DIM_STDS = [0.3, 0.3] -> 11.11


@dataclass(frozen=True)
class EmbeddingMode:
    """What the E embedding channels hold: grid axes (in channel order), then free dims."""

    name: str
    grid_axes: tuple
    num_free_dims: int

    @property
    def num_dims(self) -> int:
        """E: embedding channels."""
        return len(self.grid_axes) + self.num_free_dims

    @property
    def num_variance_dims(self) -> int:
        """E - F: channels with a predicted (log-)precision; the free dims have a fixed one."""
        return len(self.grid_axes)


EMBEDDING_MODES = {
    mode.name: mode
    for mode in (
        EmbeddingMode("xy", ("y", "x"), 0),
        EmbeddingMode("ff", (), 2),
        EmbeddingMode("xyt", ("t", "y", "x"), 0),
        EmbeddingMode("xyf", ("y", "x"), 1),
        EmbeddingMode("xytf", ("t", "y", "x"), 1),
        EmbeddingMode("xyff", ("y", "x"), 2),
        EmbeddingMode("xytff", ("t", "y", "x"), 2),
        EmbeddingMode("xyfff", ("y", "x"), 3),
    )
}


def get_embedding_mode(mode: Union[str, "EmbeddingMode"]) -> "EmbeddingMode":
    """An :class:`EmbeddingMode` from itself or its name."""
    if isinstance(mode, EmbeddingMode):
        return mode
    if mode not in EMBEDDING_MODES:
        raise ValueError(f"mode must be one of {sorted(EMBEDDING_MODES)}, got {mode!r}")
    return EMBEDDING_MODES[mode]


def spatiotemporal_grid(
    mode: Union[str, EmbeddingMode],
    num_frames: int,
    height: int,
    width: int,
    *,
    time_scale: float = 1.0,
    dtype: torch.dtype = torch.float32,
    device: Union[torch.device, str, None] = None,
) -> torch.Tensor:
    """The fixed coordinate grid that embeddings are offsets from.

    Args:
        mode (str or EmbeddingMode): embedding mode, e.g. ``"xyff"``.
        num_frames, height, width (int >= 1): T, H, W of the (padded, stride-4) output map.
        time_scale (float): half-range of the t axis (official buffer: 1.0).

    Returns:
        Tensor[E, T, H, W]: grid channels in the mode's order, zeros for free dims. Computed in
        float32 (as the official code does), then cast to ``dtype``.
    """
    mode = get_embedding_mode(mode)
    for name, size in (("num_frames", num_frames), ("height", height), ("width", width)):
        if int(size) < 1:
            raise ValueError(f"{name} must be >= 1, got {size}")
    x_extent = max(1.0, width / height)
    y_extent = max(1.0, height / width)
    axes = {
        "t": torch.linspace(-time_scale, time_scale, num_frames, device=device).view(-1, 1, 1),
        "y": torch.linspace(-y_extent, y_extent, height, device=device).view(1, -1, 1),
        "x": torch.linspace(-x_extent, x_extent, width, device=device).view(1, 1, -1),
    }
    grid = torch.zeros(mode.num_dims, num_frames, height, width, device=device)  # [E, T, H, W]
    for channel, axis in enumerate(mode.grid_axes):
        grid[channel] = axes[axis].expand(num_frames, height, width)
    return grid.to(dtype)


def mix_embeddings(
    raw_offsets: torch.Tensor, mode: Union[str, EmbeddingMode], *, time_scale: float = 1.0
) -> torch.Tensor:
    """Embeddings from the network's raw offsets: ``tanh(0.25 * z) + grid``.

    Args:
        raw_offsets (Tensor[B, E, T, H, W], float): output of the embedding 1x1x1 conv.
        mode (str or EmbeddingMode): embedding mode with E channels.

    Returns:
        Tensor[B, E, T, H, W], same dtype, differentiable in ``raw_offsets``.
    """
    mode = get_embedding_mode(mode)
    check_tensor(
        "raw_offsets",
        raw_offsets,
        shape=(None, mode.num_dims, None, None, None),
        dtypes=FLOAT_DTYPES,
    )
    _, _, num_frames, height, width = raw_offsets.shape
    grid = spatiotemporal_grid(
        mode,
        num_frames,
        height,
        width,
        time_scale=time_scale,
        dtype=raw_offsets.dtype,
        device=raw_offsets.device,
    )
    return torch.tanh(TANH_PRESCALE * raw_offsets) + grid
