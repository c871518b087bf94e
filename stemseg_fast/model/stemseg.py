"""The STEm-Seg network: per-frame backbone, per-clip TSE decoders and heads (official:
modeling/model_builder.py ``TrainingModel``, embedding_decoder.py, seediness_decoder.py,
semseg_decoder.py).

Heads, on the c4-channel stride-4 volume of their decoder (all 1x1x1 convs):

* embedding head: ``conv_embedding`` (E, no bias) -> tanh(0.25 z) + grid (:func:`mix_embeddings`);
  ``conv_variance`` (E - F, with bias) -> raw log-precisions (consumers apply 10 * exp);
  ``conv_seediness`` (1, no bias) -> sigmoid, unless a separate seediness decoder exists.
* seediness head (DAVIS): its own decoder, ``conv_out`` (1, no bias) -> sigmoid.
* semantic head: its own decoder, ``conv_out`` (NUM_CLASSES + 1, no bias): class logits
  (index 0 = background), then a class-agnostic foreground logit.

Outputs are float32 whatever the autocast dtype (losses and clustering read them).
"""

from typing import Any, List, NamedTuple, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from .backbone import Backbone, build_backbone
from .decoder import TSEDecoder
from .embeddings import EmbeddingMode, get_embedding_mode, mix_embeddings
from .presets import PRESETS, DecoderConfig, STEmSegConfig


class STEmSegOutput(NamedTuple):
    embeddings: torch.Tensor  # [B, E, T, h, w], grid added
    log_precisions: torch.Tensor  # [B, E-F, T, h, w], raw (precision = 10 * exp)
    seediness: torch.Tensor  # [B, 1, T, h, w] in (0, 1)
    semantic_logits: Optional[torch.Tensor]  # [B, C+1, T, h, w] or None


class EmbeddingHead(nn.Module):
    """TSE decoder + embedding, log-precision and (optionally) seediness convs.

    Args:
        decoder: the TSE decoder body.
        embedding_mode: mode name or :class:`EmbeddingMode` (E, F).
        with_seediness: predict seediness here (False when a separate seediness head exists).
    """

    def __init__(
        self,
        decoder: TSEDecoder,
        embedding_mode: Union[str, EmbeddingMode],
        *,
        with_seediness: bool = True,
    ) -> None:
        super().__init__()
        self.decoder = decoder
        self.embedding_mode = get_embedding_mode(embedding_mode)
        channels = decoder.out_channels
        self.conv_embedding = nn.Conv3d(channels, self.embedding_mode.num_dims, 1, bias=False)
        self.conv_variance = nn.Conv3d(channels, self.embedding_mode.num_variance_dims, 1)
        self.conv_seediness = nn.Conv3d(channels, 1, 1, bias=False) if with_seediness else None

    def forward(
        self, features: Sequence[torch.Tensor]
    ) -> Tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor]]:
        x = self.decoder(features)
        embeddings = mix_embeddings(self.conv_embedding(x).float(), self.embedding_mode)
        log_precisions = self.conv_variance(x).float()
        seediness = None
        if self.conv_seediness is not None:
            seediness = torch.sigmoid(self.conv_seediness(x).float())
        return embeddings, log_precisions, seediness


class OutputHead(nn.Module):
    """TSE decoder + one 1x1x1 conv (no bias): the seediness and semantic heads."""

    def __init__(self, decoder: TSEDecoder, out_channels: int) -> None:
        super().__init__()
        self.decoder = decoder
        self.conv_out = nn.Conv3d(decoder.out_channels, out_channels, 1, bias=False)

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        return self.conv_out(self.decoder(features)).float()


class STEmSeg(nn.Module):
    """The full network.

    Args:
        backbone: per-frame ResNet-FPN returning P2..P5.
        embedding_head: :class:`EmbeddingHead`.
        seediness_head: separate :class:`OutputHead` with 1 channel, or None (seediness from the
            embedding head).
        semantic_head: :class:`OutputHead` with NUM_CLASSES + 1 channels, or None.
    """

    def __init__(
        self,
        backbone: Backbone,
        embedding_head: EmbeddingHead,
        *,
        seediness_head: Optional[OutputHead] = None,
        semantic_head: Optional[OutputHead] = None,
    ) -> None:
        super().__init__()
        if (seediness_head is None) == (embedding_head.conv_seediness is None):
            raise ValueError(
                "seediness must come from exactly one place: pass seediness_head "
                "if and only if embedding_head was built with_seediness=False"
            )
        self.backbone = backbone
        self.embedding_head = embedding_head
        self.seediness_head = seediness_head
        self.semseg_head = semantic_head
        self.config: Optional[STEmSegConfig] = None  # the preset it was built from, for saving

    def backbone_features(self, frames: torch.Tensor) -> List[torch.Tensor]:
        """Per-frame features, cacheable across overlapping clips.

        Args:
            frames (Tensor[N, 3, H, W]): normalised, padded BGR frames (H, W multiples of 32).
        Returns:
            [P2, P3, P4, P5], each Tensor[N, C, H/s, W/s].
        """
        return self.backbone(frames)

    @staticmethod
    def stack_clip(frame_features: Sequence[Sequence[torch.Tensor]]) -> List[torch.Tensor]:
        """T per-frame feature lists (each [P2..P5] of [B, C, h, w]) -> [B, C, T, h, w] volumes."""
        return [torch.stack(level, dim=2) for level in zip(*frame_features)]

    def heads(self, volumes: Sequence[torch.Tensor]) -> STEmSegOutput:
        """Decoders and heads on one clip's stacked FPN volumes [B, C, T, H/s, W/s] (P2..P5)."""
        embeddings, log_precisions, seediness = self.embedding_head(volumes)
        if self.seediness_head is not None:
            seediness = torch.sigmoid(self.seediness_head(volumes))
        semantic = None if self.semseg_head is None else self.semseg_head(volumes)
        return STEmSegOutput(embeddings, log_precisions, seediness, semantic)

    def forward(self, clip: torch.Tensor) -> STEmSegOutput:
        """clip (Tensor[B, 3, T, H, W]): normalised, padded; T in (2, 4, 8, 16, 24, 32)."""
        if clip.dim() != 5 or clip.shape[1] != 3:
            raise ValueError(f"clip must have shape [B, 3, T, H, W], got {list(clip.shape)}")
        batch, _, frames, height, width = clip.shape
        if height % 32 or width % 32:
            raise ValueError(
                f"clip height and width must be multiples of 32 (pad with "
                f"pad_to_multiple), got {height}x{width}"
            )
        images = clip.transpose(1, 2).reshape(batch * frames, 3, height, width)
        features = self.backbone(images)  # [B*T, C, h, w] per level
        volumes = [f.view(batch, frames, *f.shape[1:]).transpose(1, 2) for f in features]
        return self.heads(volumes)


def _decoder(in_channels, config: DecoderConfig, fused, backend, channels_last):
    return TSEDecoder(
        in_channels,
        config.widths,
        num_groups=config.num_groups,
        fused=fused,
        backend=backend,
        channels_last=channels_last,
    )


def build_stemseg(
    config: STEmSegConfig,
    *,
    fused: bool = False,
    backend: str = "auto",
    channels_last: bool = False,
) -> STEmSeg:
    """Build the network a preset describes.

    Args:
        config: a :class:`STEmSegConfig` (e.g. ``PRESETS["youtube_vis"]``).
        fused: decoders use the fused TSE blocks (same parameters as the reference).
        backend: kernel backend for the fused blocks.
        channels_last: run the decoders on channels-last-3d tensors.
    """
    b = config.backbone
    backbone = build_backbone(
        b.blocks_per_stage,
        num_groups=b.num_groups,
        width_per_group=b.width_per_group,
        stride_in_1x1=b.stride_in_1x1,
        stem_channels=b.stem_channels,
        res2_out_channels=b.res2_out_channels,
        fpn_channels=b.fpn_channels,
        freeze_at=b.freeze_at,
    )
    channels = b.fpn_channels
    options = dict(fused=fused, backend=backend, channels_last=channels_last)
    embedding_head = EmbeddingHead(
        _decoder(channels, config.embedding_decoder, **options),
        config.embedding_mode,
        with_seediness=config.seediness_decoder is None,
    )
    seediness_head = None
    if config.seediness_decoder is not None:
        seediness_head = OutputHead(_decoder(channels, config.seediness_decoder, **options), 1)
    semantic_head = None
    if config.semantic_decoder is not None:
        semantic_head = OutputHead(
            _decoder(channels, config.semantic_decoder, **options), config.num_classes + 1
        )
    model = STEmSeg(
        backbone, embedding_head, seediness_head=seediness_head, semantic_head=semantic_head
    )
    model.config = config
    return model


def stemseg_r101_youtube_vis(**kwargs: Any) -> "STEmSeg":
    """YouTube-VIS model (R-101-FPN, xyff, semantic head 41 + 1). See :func:`build_stemseg`."""
    return build_stemseg(PRESETS["youtube_vis"], **kwargs)


def stemseg_r101_davis(**kwargs: Any) -> "STEmSeg":
    """DAVIS model (R-101-FPN, xyff, own seediness decoder, no semantic head)."""
    return build_stemseg(PRESETS["davis"], **kwargs)


def stemseg_r101_kitti_mots(**kwargs: Any) -> "STEmSeg":
    """KITTI-MOTS model (R-101-FPN, xyt, semantic head 3 + 1)."""
    return build_stemseg(PRESETS["kitti_mots"], **kwargs)


def stemseg_x101_ovis(**kwargs: Any) -> "STEmSeg":
    """OVIS model (X-101-32x8d-FPN, xyff, semantic head 26 + 1)."""
    return build_stemseg(PRESETS["ovis"], **kwargs)


def stemseg_tiny(**kwargs: Any) -> "STEmSeg":
    """A narrow model for tests and the demo."""
    return build_stemseg(PRESETS["tiny"], **kwargs)
