"""Training: datasets, pseudo-clips, loss wiring, trainer and configs (``stemseg_fast.training``)."""
