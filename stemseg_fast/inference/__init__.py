"""Videos through the network, clustering and stitching: :class:`Predictor` loads a model and
runs :class:`~stemseg_fast.inference.pipeline.VideoRun` on each video; the result is a
:class:`VideoPrediction`, from which each benchmark's rule (:mod:`.selection`) selects tracks."""

from .prediction import VideoPrediction
from .predictor import Predictor, load_model

__all__ = ["Predictor", "VideoPrediction", "load_model"]
