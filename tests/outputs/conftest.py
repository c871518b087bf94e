"""The writer tests' shared inputs (defined once in helpers)."""

from helpers import clip, video_tracks  # noqa: F401 (pytest finds fixtures by name here)
