"""Inference: frame reading, clip schedule, clustering and stitching calls, Predictor, tracks."""
