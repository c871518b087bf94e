import pytest
import torch
from helpers import assert_close

from stemseg_fast.model.embeddings import (
    EMBEDDING_MODES,
    get_embedding_mode,
    mix_embeddings,
    spatiotemporal_grid,
)

# (mode, E, F, grid axes) from the reference spec, section 2
MODE_TABLE = [
    ("xy", 2, 0, ("y", "x")),
    ("ff", 2, 2, ()),
    ("xyt", 3, 0, ("t", "y", "x")),
    ("xyf", 3, 1, ("y", "x")),
    ("xytf", 4, 1, ("t", "y", "x")),
    ("xyff", 4, 2, ("y", "x")),
    ("xytff", 5, 2, ("t", "y", "x")),
    ("xyfff", 5, 3, ("y", "x")),
]


@pytest.mark.parametrize("name,num_dims,num_free,axes", MODE_TABLE)
def test_mode_table(name, num_dims, num_free, axes):
    mode = get_embedding_mode(name)
    assert (mode.num_dims, mode.num_free_dims, mode.grid_axes) == (num_dims, num_free, axes)
    assert mode.num_variance_dims == num_dims - num_free
    assert set(EMBEDDING_MODES) == {row[0] for row in MODE_TABLE}


def test_grid_ranges_and_channel_order_on_a_wide_map():
    # 160 x 288 stride-4 map of a 1152 x 640 YouTube-VIS frame: y spans [-1, 1], x [-1.8, 1.8].
    grid = spatiotemporal_grid("xytff", 3, 160, 288)
    t, y, x, free1, free2 = grid
    assert_close(t[:, 0, 0], torch.tensor([-1.0, 0.0, 1.0]), dtype=torch.float32, name="t")
    assert y[0, 0, 0] == -1.0 and y[0, -1, 0] == 1.0
    assert x[0, 0, 0] == pytest.approx(-1.8) and x[0, 0, -1] == pytest.approx(1.8)
    # isotropic spacing: one pixel step is 2 / (short side - 1) on both axes
    assert (y[0, 1, 0] - y[0, 0, 0]).item() == pytest.approx(2 / 159, rel=1e-5)
    assert (x[0, 0, 1] - x[0, 0, 0]).item() == pytest.approx(3.6 / 287, rel=1e-5)
    assert torch.all(y[:, :, 0] == y[:, :, 5]) and torch.all(x[:, 0, :] == x[:, 7, :])
    assert not free1.any() and not free2.any()


def test_grid_on_a_tall_map_swaps_the_extents():
    grid = spatiotemporal_grid("xy", 1, 9, 3)
    assert grid[0, 0, -1, 0] == pytest.approx(3.0) and grid[1, 0, 0, -1] == pytest.approx(1.0)


def test_grid_with_a_single_pixel_and_frame():
    grid = spatiotemporal_grid("xyt", 1, 1, 1)
    assert grid.shape == (3, 1, 1, 1) and torch.isfinite(grid).all()


def test_time_scale_and_dtype():
    grid = spatiotemporal_grid("xyt", 5, 4, 4, time_scale=0.1, dtype=torch.float64)
    assert grid.dtype == torch.float64
    assert grid[0, -1, 0, 0].item() == pytest.approx(0.1)


def test_mix_embeddings_is_tanh_of_a_quarter_plus_grid(rng):
    raw = 3.0 * torch.randn(2, 4, 3, 5, 7, generator=rng, dtype=torch.float64, requires_grad=True)
    mixed = mix_embeddings(raw, "xyff")
    expected = torch.tanh(0.25 * raw) + spatiotemporal_grid("xyff", 3, 5, 7, dtype=torch.float64)
    assert_close(mixed, expected, name="embeddings")
    torch.autograd.gradcheck(lambda z: mix_embeddings(z, "xyff"), (raw[:1, :, :2, :2, :3],))


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match="mode must be one of"):
        get_embedding_mode("xyz")
    with pytest.raises(ValueError, match=r"raw_offsets must have shape \[\*, 4, \*, \*, \*\]"):
        mix_embeddings(torch.zeros(1, 3, 2, 2, 2), "xyff")
    with pytest.raises(ValueError, match="height must be >= 1"):
        spatiotemporal_grid("xy", 1, 0, 4)
