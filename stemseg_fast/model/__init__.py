"""The STEm-Seg network: backbone, TSE decoders, heads, presets and checkpoints."""
from .backbone import (FPN, Backbone, Bottleneck, FrozenBatchNorm2d, ResNetBody, build_backbone,
                       resnet50_fpn, resnet101_fpn, resnext101_32x8d_fpn)
from .checkpoints import (OFFICIAL_CHECKPOINT_URLS, CheckpointMismatchError,
                          download_official_checkpoint, load_checkpoint, load_official_weights,
                          remap_official_state_dict, save_checkpoint, stemseg_from_official)
from .decoder import SUPPORTED_NUM_FRAMES, TSEDecoder, temporal_schedule
from .embeddings import (EMBEDDING_MODES, FREE_DIM_PRECISION, PRECISION_SCALE, EmbeddingMode,
                         get_embedding_mode, mix_embeddings, spatiotemporal_grid)
from .preprocessing import (IMAGE_MEAN_BGR, PreprocessedClip, padded_size, preprocess_clip,
                            resized_size)
from .presets import PRESETS, BackboneConfig, DecoderConfig, InferenceConfig, STEmSegConfig
from .stemseg import (EmbeddingHead, OutputHead, STEmSeg, STEmSegOutput, build_stemseg,
                      stemseg_r101_davis, stemseg_r101_kitti_mots, stemseg_r101_youtube_vis,
                      stemseg_tiny, stemseg_x101_ovis)

__all__ = [
    "EMBEDDING_MODES", "FPN", "FREE_DIM_PRECISION", "IMAGE_MEAN_BGR",
    "OFFICIAL_CHECKPOINT_URLS", "PRECISION_SCALE", "PRESETS", "SUPPORTED_NUM_FRAMES",
    "Backbone", "BackboneConfig", "Bottleneck", "CheckpointMismatchError", "DecoderConfig",
    "EmbeddingHead", "EmbeddingMode", "FrozenBatchNorm2d", "InferenceConfig", "OutputHead",
    "PreprocessedClip", "ResNetBody", "STEmSeg", "STEmSegConfig", "STEmSegOutput", "TSEDecoder",
    "build_backbone", "build_stemseg", "download_official_checkpoint", "get_embedding_mode",
    "load_checkpoint", "load_official_weights", "mix_embeddings", "padded_size",
    "preprocess_clip", "remap_official_state_dict", "resized_size", "resnet101_fpn",
    "resnet50_fpn", "resnext101_32x8d_fpn", "save_checkpoint", "spatiotemporal_grid",
    "stemseg_from_official", "stemseg_r101_davis", "stemseg_r101_kitti_mots",
    "stemseg_r101_youtube_vis", "stemseg_tiny", "stemseg_x101_ovis", "temporal_schedule",
]
