"""greedy_cluster: one clip's seeded clustering, official reference loop vs the on-device Triton
loop, at OVIS input resolution (clustering at full resolution) and at stride 4, on inputs laid
out as the pipeline passes them (channel-first volumes, the free dims' precision a constant).

Bytes: each seed pass reads the 1-byte state of all N voxels plus, for the available
foreground voxels, E float32 embeddings and the float32 seediness (the next seed's arg-max is
reduced in the same pass): at most N + N_fg * (4E + 4) bytes per seed, counted with N_fg the
foreground voxels (availability only shrinks, so this is an upper bound). Add the set-up pass
(read the foreground mask and seediness, write the state) and the final pass (read the state
and embeddings, write N int64 labels): N * (1 + 4 + 1) + N * (1 + 8) + N_fg * 4E.
"""

import pytest
from harness import backends, bench_device, presets, run_benchmark
from inputs import embedding_inputs, instance_id_map
from presets import PRESETS

from stemseg_fast.kernels.greedy_cluster import greedy_cluster
from stemseg_fast.model.embeddings import FREE_DIM_PRECISION, PRECISION_SCALE

# A reference round at full resolution takes a few seconds on CPU (under the 30 s budget).
GPU_PRESET_NAMES = ("ovis_T8_fullres", "ovis_T8_stride4")  # also the static report's
PRESET_NAMES = presets(GPU_PRESET_NAMES, ("cpu_small", "ovis_T8_stride4", "ovis_T8_fullres"))


def setup_greedy_cluster(preset_name, backend):
    preset = PRESETS[preset_name]
    device = bench_device()
    embeddings, log_precisions, seediness = embedding_inputs(preset, device=device)
    # As the pipeline holds them: channel-first volumes, read through [N, E] views
    # (strides (1, N)), and only the predicted dims' precisions.
    embeddings = embeddings.t().contiguous().t()
    precisions = (PRECISION_SCALE * log_precisions.exp()).t().contiguous().t()  # [N, P]
    free_dims = preset.num_dims - preset.num_variance_dims
    foreground = instance_id_map(preset, device=device).flatten() >= 0  # [N], ~30 %

    def cluster():
        return greedy_cluster(
            embeddings,
            precisions,
            seediness,
            foreground,
            max_instances=preset.max_clusters,
            free_dim_precision=FREE_DIM_PRECISION if free_dims else None,
            backend=backend,
        )

    return preset, foreground, cluster


def bytes_per_seed(num_voxels, num_foreground, num_dims):
    return num_voxels + num_foreground * (4 * num_dims + 4)


@pytest.mark.parametrize("backend", backends())
@pytest.mark.parametrize("preset_name", PRESET_NAMES)
def test_greedy_cluster(benchmark, preset_name, backend):
    preset, foreground, cluster = setup_greedy_cluster(preset_name, backend)
    benchmark.group = f"greedy_cluster-{preset_name}"
    num_seeds = int(cluster().max()) + 1  # seeds the loop makes on these inputs
    num_voxels, num_foreground = preset.num_voxels, int(foreground.sum())
    per_seed = bytes_per_seed(num_voxels, num_foreground, preset.num_dims)
    setup_and_final = num_voxels * (1 + 4 + 1 + 1 + 8) + num_foreground * 4 * preset.num_dims
    info = benchmark.extra_info
    info.update(
        num_voxels=num_voxels,
        num_foreground=num_foreground,
        num_seeds=num_seeds,
        bytes_per_seed=per_seed,
        bytes_all_seeds=per_seed * num_seeds,
    )
    run_benchmark(benchmark, cluster, bytes_moved=per_seed * num_seeds + setup_and_final)
