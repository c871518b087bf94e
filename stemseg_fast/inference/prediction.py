"""A video's prediction: every stitched track with its statistics, before a benchmark's rule
keeps, orders, classifies and scores them (:meth:`VideoPrediction.select`)."""

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from stemseg_fast.tracks import Track, VideoTracks

from .selection import RULE_MAX_TRACKS, select_tracks


@dataclass
class VideoPrediction:
    """Every stitched track of one video, before a benchmark's selection rule.

    Attributes:
        name, frame_size ((height, width)), num_frames, fps, video_id: of the source.
        rles (dict[int, dict[int, dict]]): track id -> frame -> COCO RLE at the source size, for
            every frame where the track has a voxel at clustering resolution.
        track_ids, pixel_counts, first_frames, last_frames (np.ndarray[M] int64): the stitcher's
            counters (clustering resolution), ascending id.
        class_logit_sums (np.ndarray[M, C] float64 or None): per track, averaged class logits
            summed over its voxels (channel 0 background); None without a semantic head.
        class_votes (np.ndarray[M, C] int64 or None): per track, voxels per argmax class.
        max_tracks (int): the preset's track limit for its own rule.
        rule (str or None): the preset's rule, used by :meth:`select` by default.
        timings (dict[str, float]): seconds per stage (see ``pipeline.STAGES``) and ``total``.
        diagnostics (dict[str, int]): peak numbers of cached frames / clips (memory bounds).
        category_names (dict[int, str] or None): for drawing.
    """

    name: str
    frame_size: tuple
    num_frames: int
    fps: Optional[float]
    video_id: Optional[int]
    rles: dict
    track_ids: np.ndarray
    pixel_counts: np.ndarray
    first_frames: np.ndarray
    last_frames: np.ndarray
    class_logit_sums: Optional[np.ndarray]
    class_votes: Optional[np.ndarray]
    max_tracks: int
    rule: Optional[str] = None
    timings: dict = field(default_factory=dict)
    diagnostics: dict = field(default_factory=dict)
    category_names: Optional[dict] = None

    def select(
        self,
        rule: Optional[str] = None,
        *,
        max_tracks: Optional[int] = None,
        min_score: Optional[float] = None,
    ) -> VideoTracks:
        """The tracks a benchmark's rule keeps, in its output order (reference §4.4).

        Args:
            rule: ``"youtube_vis"`` (also OVIS: the longest-lived tracks, class from the summed
                logits, score = relative pixel count), ``"davis"`` (the longest-lived, category
                1, same score), ``"kitti_mots"`` (the largest, reordered by lifetime, class by
                argmax vote, score 1). Default: the preset's.
            max_tracks: default the preset's limit for its own rule, else the rule's official one.
            min_score: drop tracks scoring below it (after the rule's selection and scoring).
        """
        rule = self.rule if rule is None else rule
        if rule is None:
            raise ValueError("this prediction has no default rule: pass rule=")
        if max_tracks is None:
            max_tracks = self.max_tracks if rule == self.rule else RULE_MAX_TRACKS.get(rule)
        selection = select_tracks(
            rule,
            self.track_ids,
            self.pixel_counts,
            self.first_frames,
            self.last_frames,
            class_logit_sums=self.class_logit_sums,
            class_votes=self.class_votes,
            max_tracks=max_tracks,
        )
        tracks = []
        for index, category_id, score in zip(
            selection.indices, selection.category_ids, selection.scores
        ):
            if min_score is not None and score < min_score:
                continue
            track_id = int(self.track_ids[index])
            tracks.append(
                Track(
                    track_id,
                    self.frame_size,
                    self.rles.get(track_id, {}),
                    category_id=int(category_id),
                    score=float(score),
                )
            )
        return VideoTracks(
            self.name,
            tracks,
            self.frame_size,
            self.num_frames,
            fps=self.fps,
            video_id=self.video_id,
            timings=dict(self.timings),
            category_names=self.category_names,
        )
