"""An independent transcription of the official STEm-Seg code (sabarim/STEm-Seg @ e1ab59d), for
tests that must not compare the project with something derived from itself.

Written from the official module definitions and config files, not from this project: the
network heads (``modeling/embedding_decoder.py``, ``semseg_decoder.py``,
``seediness_decoder.py``, ``common.py``, ``embedding_utils.py``), the maskrcnn-benchmark
backbone (``modeling/backbone/*.py``), the training targets and losses
(``model_builder.py: TrainingModel.resize_masks, compute_fg_loss``,
``losses/embedding_loss.py``, ``losses/cross_entropy.py``, Berman's ``_lovasz.py``) and the
output generators' mask path and class rules (``inference/output_utils/{youtube_vis,davis,
kitti_mots}.py``). Nothing here imports ``stemseg_fast``: the official config values are typed
in below from ``config/defaults.yaml`` and the dataset YAMLs, so a wrong constant in the
project's presets shows up as a difference.

The official code reads a global config; here every such value is an argument.
"""

from collections import defaultdict

import torch
import torch.nn.functional as F
from torch import nn

# config/defaults.yaml merged with each dataset YAML (only the keys the network reads).
_DEFAULTS = dict(
    NUM_FRAMES=8,
    EMBEDDING_DIM_MODE="xyt",
    EMBEDDING_SIZE=3,
    USE_SEEDINESS_HEAD=False,
    USE_SEMSEG_HEAD=True,
    EMBEDDINGS_INTER_CHANNELS=(256, 256, 128, 128),
    SEMSEG_INTER_CHANNELS=(256, 256, 128, 128),
    SEEDINESS_INTER_CHANNELS=(256, 256, 128, 128),
    GN_NUM_GROUPS=32,
    FOREGROUND_CHANNEL=True,
    NUM_CLASSES=2,
    FREE_DIM_STDS=(),
    TANH_ACTIVATION=True,
    RES2_OUT_CHANNELS=256,
    STEM_OUT_CHANNELS=64,
    NUM_GROUPS=1,
    WIDTH_PER_GROUP=64,
    STRIDE_IN_1X1=True,
    BACKBONE_OUT_CHANNELS=256,
    MIN_DIM=800,
    MAX_DIM=1333,
)
OFFICIAL_CONFIGS = {
    "youtube_vis": dict(
        _DEFAULTS,
        MIN_DIM=640,
        MAX_DIM=1196,
        NUM_CLASSES=41,
        NUM_FRAMES=8,
        EMBEDDING_DIM_MODE="xyff",
        EMBEDDING_SIZE=4,
        SEMSEG_INTER_CHANNELS=(256, 256, 256, 256),
        FREE_DIM_STDS=(0.3, 0.3),
    ),
    "davis": dict(
        _DEFAULTS,
        MIN_DIM=736,
        MAX_DIM=1248,
        NUM_CLASSES=2,
        NUM_FRAMES=16,
        EMBEDDING_DIM_MODE="xyff",
        EMBEDDING_SIZE=4,
        USE_SEEDINESS_HEAD=True,
        USE_SEMSEG_HEAD=False,
        FREE_DIM_STDS=(0.3, 0.3),
    ),
    "kitti_mots": dict(
        _DEFAULTS, MIN_DIM=736, MAX_DIM=1792, NUM_CLASSES=3, NUM_FRAMES=8, EMBEDDING_DIM_MODE="xyt"
    ),
    # Not an official model: the OVIS challenge report's ResNeXt-101-32x8d (maskrcnn-benchmark
    # X-101-32x8d settings) with the xyff embeddings and defaults.yaml heads, 25 classes + bg.
    "ovis": dict(
        _DEFAULTS,
        MIN_DIM=640,
        MAX_DIM=1196,
        NUM_CLASSES=26,
        NUM_FRAMES=8,
        EMBEDDING_DIM_MODE="xyff",
        EMBEDDING_SIZE=4,
        FREE_DIM_STDS=(0.3, 0.3),
        NUM_GROUPS=32,
        WIDTH_PER_GROUP=8,
        STRIDE_IN_1X1=False,
    ),
}

# embedding_utils.get_nb_embedding_dims / get_nb_free_dims
_EMBEDDING_DIMS = {
    "xy": 2,
    "ff": 2,
    "xyt": 3,
    "xyf": 3,
    "xytf": 4,
    "xyff": 4,
    "xytff": 5,
    "xyfff": 5,
}
_FREE_DIMS = {"xyf": 1, "xytf": 1, "xyff": 2, "xytff": 2, "xyfff": 3}


# ---------------------------------------------------------------------------------------------
# Network heads


def _pool_or_identity(num_frames):
    """common.get_pooling_layer_creator: which of the three pooling slots hold AvgPool3d."""
    active = {2: 0, 4: 1, 8: 2, 16: 3, 24: 3, 32: 3}[num_frames]
    return [
        (lambda: nn.AvgPool3d(3, stride=(2, 1, 1), padding=1)) if slot < active else nn.Identity
        for slot in range(3)
    ]


def _time_scales(num_frames):
    """common.get_temporal_scales."""
    return {2: (1, 1, 1), 4: (1, 1, 2), 8: (1, 2, 2)}.get(num_frames, (2, 2, 2))


class OfficialSqueezeExpand(nn.Module):
    """The body every official head shares; ``forward`` takes the maps coarsest first."""

    def __init__(self, in_channels, inter_channels, num_frames, gn_groups):
        super().__init__()
        pools = _pool_or_identity(num_frames)
        c32, c16, c8, c4 = inter_channels

        def conv_norm_relu(cin, cout):
            return [
                nn.Conv3d(cin, cout, 3, stride=1, padding=1),
                nn.GroupNorm(gn_groups, cout),
                nn.ReLU(inplace=True),
            ]

        self.block_32x = nn.Sequential(
            *conv_norm_relu(in_channels, c32),
            pools[0](),
            *conv_norm_relu(c32, c32),
            pools[1](),
            *conv_norm_relu(c32, c32),
            pools[2](),
        )
        self.block_16x = nn.Sequential(
            *conv_norm_relu(in_channels, c16), pools[0](), *conv_norm_relu(c16, c16), pools[1]()
        )
        self.block_8x = nn.Sequential(*conv_norm_relu(in_channels, c8), pools[0]())
        self.block_4x = nn.Sequential(*conv_norm_relu(in_channels, c4))
        self.time_scales = _time_scales(num_frames)
        self.conv_16 = nn.Conv3d(c32 + c16, c16, 1, bias=False)
        self.conv_8 = nn.Conv3d(c16 + c8, c8, 1, bias=False)
        self.conv_4 = nn.Conv3d(c8 + c4, c4, 1, bias=False)

    def body(self, maps_coarse_first):
        x32, x16, x8, x4 = maps_coarse_first
        s0, s1, s2 = self.time_scales
        x = F.interpolate(
            self.block_32x(x32), None, (s0, 2, 2), mode="trilinear", align_corners=False
        )
        x = self.conv_16(torch.cat((x, self.block_16x(x16)), 1))
        x = F.interpolate(x, None, (s1, 2, 2), mode="trilinear", align_corners=False)
        x = self.conv_8(torch.cat((x, self.block_8x(x8)), 1))
        x = F.interpolate(x, None, (s2, 2, 2), mode="trilinear", align_corners=False)
        return self.conv_4(torch.cat((x, self.block_4x(x4)), 1))


def official_grid_offsets(embeddings, mode, time_scale=1.0):
    """embedding_utils.add_spatiotemporal_offset for the modes official models use."""
    _, _, frames, height, width = embeddings.shape
    x_abs = max(1.0, width / float(height))
    y_abs = max(1.0, height / float(width))
    x = torch.linspace(-x_abs, x_abs, width, dtype=torch.float32)
    y = torch.linspace(-y_abs, y_abs, height, dtype=torch.float32)
    t = torch.linspace(-time_scale, time_scale, frames, dtype=torch.float32)
    t, y, x = torch.meshgrid(t, y, x, indexing="ij")
    zeros = torch.zeros_like(x)
    channels = {
        "xy": (y, x),
        "ff": (),
        "xyt": (t, y, x),
        "xyf": (y, x, zeros),
        "xytf": (t, y, x, zeros),
        "xyff": (y, x, zeros, zeros),
        "xytff": (t, y, x, zeros, zeros),
        "xyfff": (y, x, zeros, zeros, zeros),
    }[mode]
    if not channels:
        return embeddings
    return embeddings + torch.stack(channels).to(embeddings)[None]


class OfficialEmbeddingHead(OfficialSqueezeExpand):
    """embedding_decoder.SqueezingExpandDecoder: [N, E + (E - F) (+ 1), T, H, W]."""

    def __init__(
        self,
        in_channels,
        inter_channels,
        embedding_size,
        mode,
        seediness_output,
        num_frames,
        gn_groups,
    ):
        super().__init__(in_channels, inter_channels, num_frames, gn_groups)
        self.mode = mode
        self.conv_embedding = nn.Conv3d(inter_channels[-1], _EMBEDDING_DIMS[mode], 1, bias=False)
        self.conv_variance = nn.Conv3d(
            inter_channels[-1], embedding_size - _FREE_DIMS.get(mode, 0), 1, bias=True
        )
        self.conv_seediness = (
            nn.Conv3d(inter_channels[-1], 1, 1, bias=False) if seediness_output else None
        )
        self.register_buffer("time_scale", torch.tensor(1.0))

    def forward(self, maps_coarse_first):
        x = self.body(maps_coarse_first)
        embeddings = official_grid_offsets(
            (self.conv_embedding(x) * 0.25).tanh(), self.mode, float(self.time_scale)
        )
        outputs = [embeddings, self.conv_variance(x)]
        if self.conv_seediness is not None:
            outputs.append(self.conv_seediness(x).sigmoid())
        return torch.cat(outputs, 1)


class OfficialSemsegHead(OfficialSqueezeExpand):
    """semseg_decoder.SqueezeExpandDecoder; takes the maps finest first (it reverses them)."""

    def __init__(
        self, in_channels, num_classes, inter_channels, foreground_channel, num_frames, gn_groups
    ):
        super().__init__(in_channels, inter_channels, num_frames, gn_groups)
        out = num_classes + 1 if foreground_channel else num_classes
        self.conv_out = nn.Conv3d(inter_channels[3], out, 1, bias=False)

    def forward(self, maps_fine_first):
        return self.conv_out(self.body(maps_fine_first[::-1]))


class OfficialSeedinessHead(OfficialSqueezeExpand):
    """seediness_decoder.SqueezeExpandDecoder: [N, 1, T, H, W] sigmoid; maps coarsest first."""

    def __init__(self, in_channels, inter_channels, num_frames, gn_groups):
        super().__init__(in_channels, inter_channels, num_frames, gn_groups)
        self.conv_out = nn.Conv3d(inter_channels[3], 1, 1, bias=False)

    def forward(self, maps_coarse_first):
        return self.conv_out(self.body(maps_coarse_first)).sigmoid()


class OfficialHeads(nn.Module):
    """The heads of model_builder.build_model at an official config; state-dict keys are the
    official ones (``embedding_head.block_32x.0.weight``, ``semseg_head.conv_out.weight``)."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        channels, frames, groups = (
            cfg["BACKBONE_OUT_CHANNELS"],
            cfg["NUM_FRAMES"],
            cfg["GN_NUM_GROUPS"],
        )
        self.embedding_head = OfficialEmbeddingHead(
            channels,
            cfg["EMBEDDINGS_INTER_CHANNELS"],
            cfg["EMBEDDING_SIZE"],
            cfg["EMBEDDING_DIM_MODE"],
            not cfg["USE_SEEDINESS_HEAD"],
            frames,
            groups,
        )
        self.seediness_head = (
            OfficialSeedinessHead(channels, cfg["SEEDINESS_INTER_CHANNELS"], frames, groups)
            if cfg["USE_SEEDINESS_HEAD"]
            else None
        )
        self.semseg_head = (
            OfficialSemsegHead(
                channels,
                cfg["NUM_CLASSES"],
                cfg["SEMSEG_INTER_CHANNELS"],
                cfg["FOREGROUND_CHANNEL"],
                frames,
                groups,
            )
            if cfg["USE_SEMSEG_HEAD"]
            else None
        )

    def forward(self, p2_to_p5):
        """Volumes [P2, P3, P4, P5] -> (embeddings, log-precisions, seediness, semseg or None),
        split as EmbeddingLoss.split_sizes does."""
        coarse_first = list(p2_to_p5)[::-1]  # EMBEDDINGS.SCALE / SEEDINESS.SCALE [32,16,8,4]
        embedding_map = self.embedding_head(coarse_first)
        if self.seediness_head is not None:
            embedding_map = torch.cat((embedding_map, self.seediness_head(coarse_first)), 1)
        size = self.cfg["EMBEDDING_SIZE"]
        variance = size - _FREE_DIMS.get(self.cfg["EMBEDDING_DIM_MODE"], 0)
        embeddings, log_precisions, seediness = embedding_map.split((size, variance, 1), dim=1)
        semseg = None if self.semseg_head is None else self.semseg_head(list(p2_to_p5))
        return embeddings, log_precisions, seediness, semseg


# ---------------------------------------------------------------------------------------------
# maskrcnn-benchmark backbone with the STEm-Seg FPN


class OfficialFrozenBN(nn.Module):
    def __init__(self, n):
        super().__init__()
        for name, value in (
            ("weight", 1.0),
            ("bias", 0.0),
            ("running_mean", 0.0),
            ("running_var", 1.0),
        ):
            self.register_buffer(name, torch.full((n,), value))

    def forward(self, x):
        scale = self.weight * self.running_var.rsqrt()  # eps = 0
        bias = self.bias - self.running_mean * scale
        return x * scale.view(1, -1, 1, 1) + bias.view(1, -1, 1, 1)


class OfficialBottleneck(nn.Module):
    def __init__(self, cin, bottleneck, cout, groups, stride_in_1x1, stride):
        super().__init__()
        self.downsample = None
        if cin != cout:
            self.downsample = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride=stride, bias=False), OfficialFrozenBN(cout)
            )
        s1, s3 = (stride, 1) if stride_in_1x1 else (1, stride)
        self.conv1 = nn.Conv2d(cin, bottleneck, 1, stride=s1, bias=False)
        self.bn1 = OfficialFrozenBN(bottleneck)
        self.conv2 = nn.Conv2d(
            bottleneck, bottleneck, 3, stride=s3, padding=1, bias=False, groups=groups
        )
        self.bn2 = OfficialFrozenBN(bottleneck)
        self.conv3 = nn.Conv2d(bottleneck, cout, 1, bias=False)
        self.bn3 = OfficialFrozenBN(cout)

    def forward(self, x):
        out = F.relu_(self.bn1(self.conv1(x)))
        out = F.relu_(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu_(out + (x if self.downsample is None else self.downsample(x)))


class _Stem(nn.Module):
    def __init__(self, cout):
        super().__init__()
        self.conv1 = nn.Conv2d(3, cout, 7, stride=2, padding=3, bias=False)
        self.bn1 = OfficialFrozenBN(cout)

    def forward(self, x):
        return F.max_pool2d(F.relu_(self.bn1(self.conv1(x))), kernel_size=3, stride=2, padding=1)


class OfficialBackbone(nn.Module):
    """resnet.ResNet (R-50/R-101 stage specs, or X-101 settings) + fpn.FPN (no top block)."""

    def __init__(self, cfg, blocks=(3, 4, 23, 3)):
        super().__init__()
        body = nn.Module()
        body.stem = _Stem(cfg["STEM_OUT_CHANNELS"])
        cin = cfg["STEM_OUT_CHANNELS"]
        bottleneck = cfg["NUM_GROUPS"] * cfg["WIDTH_PER_GROUP"]
        cout = cfg["RES2_OUT_CHANNELS"]
        outs = []
        for index, count in enumerate(blocks):
            first_stride = int(index > 0) + 1
            layers = []
            for block in range(count):
                layers.append(
                    OfficialBottleneck(
                        cin,
                        bottleneck,
                        cout,
                        cfg["NUM_GROUPS"],
                        cfg["STRIDE_IN_1X1"],
                        first_stride if block == 0 else 1,
                    )
                )
                cin = cout
            body.add_module(f"layer{index + 1}", nn.Sequential(*layers))
            outs.append(cout)
            bottleneck, cout = bottleneck * 2, cout * 2
        self.body = body
        self.fpn = nn.Module()
        for level, channels in enumerate(outs, 1):
            self.fpn.add_module(
                f"fpn_inner{level}", nn.Conv2d(channels, cfg["BACKBONE_OUT_CHANNELS"], 1)
            )
            self.fpn.add_module(
                f"fpn_layer{level}",
                nn.Conv2d(cfg["BACKBONE_OUT_CHANNELS"], cfg["BACKBONE_OUT_CHANNELS"], 3, padding=1),
            )

    def forward(self, images):
        x = self.body.stem(images)
        features = []
        for level in range(1, 5):
            x = getattr(self.body, f"layer{level}")(x)
            features.append(x)
        last = self.fpn.fpn_inner4(features[-1])
        results = [self.fpn.fpn_layer4(last)]
        for level in (3, 2, 1):
            top_down = F.interpolate(last, scale_factor=2, mode="bilinear", align_corners=False)
            last = getattr(self.fpn, f"fpn_inner{level}")(features[level - 1]) + top_down
            results.insert(0, getattr(self.fpn, f"fpn_layer{level}")(last))
        return results


# ---------------------------------------------------------------------------------------------
# Training targets and losses


def official_resize_masks(masks, ignore_masks, scale=4):
    """TrainingModel.resize_masks: bilinear 1/scale then a truncating byte cast.

    masks [I, T, H, W] uint8 (the per-instance, possibly overlapping masks), ignore [T, H, W]."""
    small = F.interpolate(
        masks.float(), scale_factor=1.0 / scale, mode="bilinear", align_corners=False
    ).byte()
    small_ignore = F.interpolate(
        ignore_masks[None].float(), scale_factor=1.0 / scale, mode="bilinear", align_corners=False
    )[0].byte()
    return small, small_ignore


def official_semseg_mask(masks, category_ids):
    """data.common.instance_masks_to_semseg_mask: the max category over covering instances."""
    if masks.shape[0] == 0:
        return torch.zeros(masks.shape[1:], dtype=torch.long)
    return (masks.long() * category_ids.long().view(-1, 1, 1, 1)).max(0)[0]


def _lovasz_grad(gt_sorted, dtype):
    """_lovasz.lovasz_grad (Berman et al.); official dtype float32, here the errors' dtype so a
    float64 test compares to 1e-9."""
    gts = gt_sorted.sum().to(dtype)
    intersection = gts - gt_sorted.to(dtype).cumsum(0)
    union = gts + (1 - gt_sorted).to(dtype).cumsum(0)
    jaccard = 1.0 - intersection / union
    if len(gt_sorted) > 1:
        jaccard[1:] = jaccard[1:] - jaccard[:-1]
    return jaccard


def official_lovasz_hinge_flat(logits, labels):
    """_lovasz.lovasz_hinge_flat on flat logits [P] and binary labels [P]."""
    signs = 2.0 * labels.to(logits.dtype) - 1.0
    errors = 1.0 - logits * signs
    errors_sorted, perm = torch.sort(errors, dim=0, descending=True)
    grad = _lovasz_grad(labels[perm], errors.dtype)
    return torch.dot(F.relu(errors_sorted), grad)


def official_embedding_loss(embedding_map, targets, free_dim_stds, n_free_dims):
    """losses/embedding_loss.EmbeddingLoss.forward (batch reduction included), returning the
    three unweighted terms (lovasz, smoothness, seediness).

    embedding_map [N, E + (E - F) + 1, T, H, W]; targets: per clip {"masks": [I, T, H, W] uint8
    at the map size, "ignore_masks": [T, H, W] uint8}. The official index shift when a mask
    vanished is reproduced (the n-th non-empty instance's Gaussian meets ``masks[n]``)."""
    embedding_size = (embedding_map.shape[1] - 1 + n_free_dims) // 2
    split = (embedding_size, embedding_size - n_free_dims, 1)
    embedding_map = embedding_map.permute(0, 2, 3, 4, 1)
    embeddings_all, bandwidths_all, seediness_all = embedding_map.split(split, dim=-1)
    # official: float32 buffers and maps; here the map's dtype, so float64 compares to 1e-9
    free_bandwidths = (
        1.0 / torch.tensor(free_dim_stds, dtype=embedding_map.dtype)[None] ** 2
        if n_free_dims
        else None
    )
    total_instances = 0.0
    lovasz = seediness = smoothness = 0.0
    zero = torch.tensor(0).to(embedding_map)
    for embeddings, bandwidths, seed, target in zip(
        embeddings_all, bandwidths_all, seediness_all, targets
    ):
        masks = target["masks"]
        if masks.numel() == 0:
            continue
        ignore = target["ignore_masks"]
        points = masks.nonzero(as_tuple=False)
        if points.shape[0] == 0:
            continue
        _, counts = points[:, 0].unique(sorted=True, return_counts=True)
        points = points[points[:, 0].argsort()]
        per_instance = [p.unbind(1)[1:] for p in points.split(tuple(counts.tolist()))]
        inst_embeddings = [embeddings[p] for p in per_instance]
        inst_bandwidths = [bandwidths[p] for p in per_instance]
        inst_seediness = [seed[p] for p in per_instance]
        total_instances += len(per_instance)

        background = (masks == 0).all(0).nonzero(as_tuple=False).unbind(1)
        bg_seed = seed[background]
        bg_loss = F.mse_loss(bg_seed, torch.zeros_like(bg_seed), reduction="none")
        seediness = (
            seediness + torch.where(ignore[background].unsqueeze(1).bool(), zero, bg_loss).mean()
        )

        clip_smoothness = 0.0
        for b in inst_bandwidths:
            clip_smoothness += torch.pow(b.mean(dim=0, keepdim=True) - b, 2).mean()
        smoothness = smoothness + clip_smoothness / float(len(inst_bandwidths))

        inst_bandwidths = [b.exp() * 10.0 for b in inst_bandwidths]
        for n in range(len(per_instance)):
            centre = inst_embeddings[n].mean(dim=0, keepdim=True)[None, None]
            bandwidth = inst_bandwidths[n].mean(dim=0, keepdim=True)
            if n_free_dims:
                bandwidth = torch.cat((bandwidth, free_bandwidths.to(bandwidth)), 1)
            probs = torch.exp(
                -0.5 * torch.sum(torch.pow(embeddings - centre, 2) * bandwidth[None, None], dim=-1)
            )
            target_n = masks[n].flatten()
            if target_n.sum(dtype=torch.long) == 0:
                continue
            lovasz = lovasz + official_lovasz_hinge_flat((probs * 2.0 - 1.0).flatten(), target_n)
            instance_probs = probs.unsqueeze(3)[per_instance[n]].detach()
            seediness = seediness + F.mse_loss(inst_seediness[n], instance_probs, reduction="mean")
    if total_instances == 0:
        return (embeddings_all.sum() * 0, bandwidths_all.sum() * 0, seediness_all.sum() * 0)
    return (
        lovasz / total_instances,
        smoothness / embedding_map.shape[0],
        seediness / float(total_instances + 1),
    )


def official_semantic_losses(semseg_logits, targets):
    """CrossEntropyLoss.forward + TrainingModel.compute_fg_loss.

    semseg_logits [N, C + 1, T, H, W]; targets: {"semseg_masks": [T, H, W] long,
    "ignore_masks": [T, H, W]}. Returns (cross entropy, foreground BCE), batch means."""
    logits = semseg_logits.permute(0, 2, 1, 3, 4)  # [N, T, C + 1, H, W]
    class_logits, fg_logits = logits.split((logits.shape[2] - 1, 1), dim=2)
    ce = fg = 0.0
    for class_seq, fg_seq, target in zip(class_logits, fg_logits.squeeze(2), targets):
        semseg, ignore = target["semseg_masks"], target["ignore_masks"]
        seq = F.cross_entropy(class_seq, semseg)  # [T, C, H, W] vs [T, H, W]
        keep = 1.0 - ignore.to(seq.dtype)
        ce = ce + (seq * keep).sum() / keep.sum()  # the official no-op masking
        bce = F.binary_cross_entropy_with_logits(
            fg_seq, (semseg > 0).to(fg_seq.dtype), reduction="none"
        )
        fg = fg + (bce * keep).sum() / keep.sum()
    return ce / len(targets), fg / len(targets)


# ---------------------------------------------------------------------------------------------
# Inference output generators


def official_resize_params(image_width, image_height, min_dim, max_dim):
    """data.common.compute_resize_params_2 -> (resized width, resized height)."""
    lower, higher = sorted((image_width, image_height))
    scale = float(min_dim) / lower
    if higher * scale > max_dim:
        scale = float(max_dim) / higher
    return round(scale * image_width), round(scale * image_height)


def _official_frame_masks(
    one_hot, mask_scale, upscaled_inputs, image_size, min_dim, max_dim, skip_same_size=False
):
    """The mask path the three generators share: [K, h, w] long -> [K, H, W] bool."""
    image_height, image_width = image_size
    mask = one_hot.unsqueeze(0).float()
    if not upscaled_inputs:
        mask = F.interpolate(mask, scale_factor=mask_scale, mode="bilinear", align_corners=False)
    width, height = official_resize_params(image_width, image_height, min_dim, max_dim)
    mask = mask[:, :, :height, :width]
    if not (skip_same_size and tuple(mask.shape[-2:]) == (image_height, image_width)):
        mask = F.interpolate(
            mask, (image_height, image_width), mode="bilinear", align_corners=False
        )
    return (mask > 0.5).squeeze(0)


def official_youtube_vis(
    track_mask_idxes,
    track_mask_labels,
    pixel_counts,
    lifetimes,
    category_masks,
    mask_dims,
    image_size,
    *,
    upscaled_inputs,
    min_dim,
    max_dim,
    max_tracks=10,
    mask_scale=4,
    outlier=-1,
):
    """YoutubeVISOutputGenerator.process_sequence + add_sequence_result.

    track_mask_idxes: per frame (ys, xs) of the foreground voxels at clustering resolution;
    track_mask_labels: per frame their track labels; pixel_counts / lifetimes: dicts in the
    official insertion order; category_masks [T, C, h, w] class logits (channel 0 background).
    Returns [{"track": id, "score", "category_id", "masks": [T, H, W] bool}] in output order."""
    keep = [
        i for i, _ in sorted(lifetimes.items(), key=lambda kv: kv[1], reverse=True) if i != outlier
    ][:max_tracks]
    if not keep:
        return []
    counts = {i: c for i, c in pixel_counts.items() if i in keep}
    most = float(max(counts.values()))
    confidences = {i: float(c) / most for i, c in counts.items()}
    category_masks = category_masks.permute(0, 2, 3, 1)  # [T, h, w, C]
    logit_sums = defaultdict(lambda: 0.0)
    areas = {i: 0.0 for i in keep}
    masks = {i: [] for i in keep}
    for t, (idxes, labels) in enumerate(zip(track_mask_idxes, track_mask_labels)):
        category_t = category_masks[t][idxes]
        frame = []
        for i in keep:
            label_mask = labels == i
            mask = torch.zeros(mask_dims, dtype=torch.long)
            mask[idxes] = label_mask.long()
            frame.append(mask)
            logit_sums[i] += category_t[label_mask].sum(dim=0)[1:]
            areas[i] += label_mask.sum(dtype=torch.float32)
        frame = _official_frame_masks(
            torch.stack(frame), mask_scale, upscaled_inputs, image_size, min_dim, max_dim
        )
        for n, i in enumerate(keep):
            masks[i].append(frame[n])
    results = []
    for i in keep:
        probs = (logit_sums[i] / areas[i]).softmax(0).tolist()
        category = sorted(enumerate(probs, 1), key=lambda kv: kv[1], reverse=True)[0][0]
        results.append(
            {
                "track": i,
                "score": confidences[i],
                "category_id": category,
                "masks": torch.stack(masks[i]),
            }
        )
    return results


def official_davis(
    track_mask_idxes,
    track_mask_labels,
    lifetimes,
    mask_dims,
    image_size,
    *,
    upscaled_inputs,
    min_dim,
    max_dim,
    max_tracks=20,
    mask_scale=4,
    outlier=-1,
):
    """DavisOutputGenerator.process_sequence: [T, H, W] uint8 condensed maps (track n -> n + 1,
    later tracks win) and the kept track ids in order."""
    keep = [
        i for i, _ in sorted(lifetimes.items(), key=lambda kv: kv[1], reverse=True) if i != outlier
    ][:max_tracks]
    maps = []
    for idxes, labels in zip(track_mask_idxes, track_mask_labels):
        full = torch.zeros(mask_dims, dtype=torch.long)
        full[idxes] = labels
        frame = _official_frame_masks(
            torch.stack([full == i for i in keep]).long(),
            mask_scale,
            upscaled_inputs,
            image_size,
            min_dim,
            max_dim,
        )
        condensed = torch.zeros(image_size, dtype=torch.uint8)
        for n in range(len(keep)):
            condensed = torch.where(frame[n], torch.tensor(n + 1, dtype=torch.uint8), condensed)
        maps.append(condensed)
    return torch.stack(maps), keep


def official_kitti_mots(
    track_mask_idxes,
    track_mask_labels,
    pixel_counts,
    lifetimes,
    argmax_masks,
    mask_dims,
    image_size,
    *,
    upscaled_inputs,
    min_dim,
    max_dim,
    max_tracks=1000,
    mask_scale=4,
    outlier=-1,
):
    """KittiMOTSOutputGenerator.process_sequence + add_sequence_result.

    argmax_masks [T, h, w] long: per-voxel argmax over the class logits (background included).
    Returns the lines' content: [(frame, written track id, class id, [H, W] bool mask)]."""
    keep = [
        i
        for i, _ in sorted(pixel_counts.items(), key=lambda kv: kv[1], reverse=True)
        if i != outlier
    ][:max_tracks]
    keep = sorted(keep, key=lambda i: lifetimes[i])
    numbering = {i: n for n, i in enumerate(keep, 1)}
    votes = defaultdict(lambda: {1: 0, 2: 0})
    per_track = {n: [] for n in numbering.values()}
    for t, (idxes, labels) in enumerate(zip(track_mask_idxes, track_mask_labels)):
        category_t = argmax_masks[t][idxes]
        frame, active = [], []
        for i in keep:
            label_mask = labels == i
            if label_mask.sum(dtype=torch.long) == 0:
                continue
            active.append(i)
            mask = torch.zeros(mask_dims, dtype=torch.long)
            mask[idxes] = label_mask.long()
            frame.append(mask)
            values, counts = category_t[label_mask].unique(return_counts=True)
            for value, count in zip(values.tolist(), counts.tolist()):
                if value != 0:
                    votes[numbering[i]][value] += count
        if not frame:
            continue
        binary = _official_frame_masks(
            torch.stack(frame),
            mask_scale,
            upscaled_inputs,
            image_size,
            min_dim,
            max_dim,
            skip_same_size=True,
        )
        owner = (binary.long() * torch.tensor(active)[:, None, None]).max(dim=0)[0]
        for i in active:
            per_track[numbering[i]].append((t, owner == i))
    lines = []
    for number, frames in per_track.items():
        category = max(votes[number].items(), key=lambda kv: kv[1])[0]
        for t, mask in frames:
            lines.append((t, category * 1000 + number, category, mask))
    return lines
