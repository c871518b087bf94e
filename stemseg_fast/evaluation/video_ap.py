"""Video AP/AR of YouTube-VIS and OVIS, as ``youtubevos/cocoapi`` ``YTVOSeval`` and the OVIS
toolkit's ``OVISeval`` compute them (written afresh from their definitions).

* IoU of a result tube d and a ground-truth tube g of one video (``YTVOSeval.computeIoU``)::

      IoU(d, g) = sum_t |d_t ∩ g_t| / sum_t |d_t ∪ g_t|

  over all frames; a frame where one side is absent adds only to the union, and an IoU with an
  empty union is 0. Crowd ground truth uses the same IoU (unlike image COCO's
  intersection-over-detection). Per frame we ask ``pycocotools.mask.iou`` for all present pairs
  at once and recover the integer intersection I = round(iou (a + b) / (1 + iou)) from the two
  areas, so the union is area(d) + area(g) - I summed over the video.
* Per (video, category): results sorted by score (stable, ``mergesort``) and cut at 100; at
  each IoU threshold .50:.05:.95, every result in score order takes the unmatched
  ground truth of highest IoU >= the threshold (ties go to the later one), preferring
  non-ignored ground truth; crowd ground truth can absorb several results. Ignored ground truth:
  crowd, or outside the subset's area range (mean per-frame area over the frames where the
  instance is present: small < 128², medium 128²..256², large > 256², bounds inclusive on both
  sides), or for OVIS outside the occlusion range. Unmatched results outside the area range are
  ignored too (not those outside the occlusion range: the toolkit does not score results'
  occlusion).
* Accumulation over videos (``accumulate``): results of each (video, category) cut at maxDets
  1/10/100, pooled and sorted by score; precision made monotone from the right and read at 101
  recall points 0:.01:1 (0 past the highest recall reached); recall = final recall. Settings
  without non-ignored ground truth hold -1 and are left out of every mean.
* Summary: AP = mean precision over thresholds, recall points and categories at maxDets 100;
  AP50/AP75 at one threshold; AR@m = mean final recall over thresholds and categories.
* OVIS occlusion (``OVISeval``): per-frame labels none/slight/severe score 0/0.25/0.75; an
  instance's score is the mean of the highest ceil(n/2) of its labelled frames; light [0, .25],
  medium [.25, .5], heavy [.5, 1] (inclusive bounds, as the toolkit).

The one deliberate deviation: a match is stored as a flag, not as the ground truth's id, so a
ground-truth annotation with id 0 counts as matched (the original's ``dtm`` of 0 reads as
unmatched).
"""

import dataclasses
from collections import defaultdict

import numpy as np
from pycocotools import mask as mask_utils

from ..io.files import PathLike
from .annotations import (
    Detection,
    GroundTruthInstance,
    VideoGroundTruth,
    load_ground_truth,
    load_results,
)

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
RECALL_THRESHOLDS = np.linspace(0.0, 1.0, 101)
MAX_DETECTIONS = (1, 10, 100)
AREA_RANGES = {
    "all": (0.0, 1e5**2),
    "small": (0.0, 128.0**2),
    "medium": (128.0**2, 256.0**2),
    "large": (256.0**2, 1e5**2),
}
OCCLUSION_RANGES = {
    "all": (0.0, 1.0),
    "light": (0.0, 0.25),
    "medium": (0.25, 0.5),
    "heavy": (0.5, 1.0),
}


@dataclasses.dataclass(frozen=True)
class Subset:
    """Which ground truth a setting scores: an area range and an occlusion range."""

    name: str
    area_range: tuple
    occlusion_range: tuple = OCCLUSION_RANGES["all"]


YTVIS_SUBSETS = tuple(Subset(name, area) for name, area in AREA_RANGES.items())
OVIS_SUBSETS = YTVIS_SUBSETS + tuple(
    Subset(f"occlusion_{name}", AREA_RANGES["all"], occlusion)
    for name, occlusion in OCCLUSION_RANGES.items()
    if name != "all"
)


@dataclasses.dataclass(frozen=True)
class VideoAPResult:
    """Video AP/AR, fractions in [0, 1]; -1 where no ground truth falls in the setting.

    Attributes:
        ap, ap50, ap75, ap_small, ap_medium, ap_large: average precision (maxDets 100).
        ar1, ar10, ar100, ar_small, ar_medium, ar_large: average recall.
        ap_light, ap_medium_occlusion, ap_heavy, ar_light, ar_medium_occlusion, ar_heavy:
            OVIS occlusion breakdown, None for YouTube-VIS.
        per_category_ap (dict[str, float]): AP of each ground-truth category by name.
        precision (ndarray[T, R, K, S, M]): thresholds x recall points x categories x subsets
            x maxDets.
        recall (ndarray[T, K, S, M]).
        subsets (tuple[Subset]): the S axis.
    """

    ap: float
    ap50: float
    ap75: float
    ap_small: float
    ap_medium: float
    ap_large: float
    ar1: float
    ar10: float
    ar100: float
    ar_small: float
    ar_medium: float
    ar_large: float
    per_category_ap: dict
    precision: np.ndarray = dataclasses.field(repr=False)
    recall: np.ndarray = dataclasses.field(repr=False)
    subsets: tuple = dataclasses.field(repr=False)
    ap_light: float | None = None
    ap_medium_occlusion: float | None = None
    ap_heavy: float | None = None
    ar_light: float | None = None
    ar_medium_occlusion: float | None = None
    ar_heavy: float | None = None

    def summary(self) -> dict[str, float]:
        """The scalar metrics as an ordered dict (None entries left out), for JSON."""
        names = (
            "ap",
            "ap50",
            "ap75",
            "ap_small",
            "ap_medium",
            "ap_large",
            "ap_light",
            "ap_medium_occlusion",
            "ap_heavy",
            "ar1",
            "ar10",
            "ar100",
            "ar_small",
            "ar_medium",
            "ar_large",
            "ar_light",
            "ar_medium_occlusion",
            "ar_heavy",
        )
        return {name: getattr(self, name) for name in names if getattr(self, name) is not None}

    def format_table(self) -> str:
        """The cocoapi summary lines, then AP per category."""
        rows = [
            ("Average Precision", "(AP)", "0.50:0.95", "all", 100, self.ap),
            ("Average Precision", "(AP)", "0.50", "all", 100, self.ap50),
            ("Average Precision", "(AP)", "0.75", "all", 100, self.ap75),
            ("Average Precision", "(AP)", "0.50:0.95", "small", 100, self.ap_small),
            ("Average Precision", "(AP)", "0.50:0.95", "medium", 100, self.ap_medium),
            ("Average Precision", "(AP)", "0.50:0.95", "large", 100, self.ap_large),
        ]
        occlusion = self.ap_light is not None
        if occlusion:
            rows += [
                ("Average Precision", "(AP)", "0.50:0.95", f"occ={name}", 100, value)
                for name, value in (
                    ("light", self.ap_light),
                    ("medium", self.ap_medium_occlusion),
                    ("heavy", self.ap_heavy),
                )
            ]
        rows += [
            ("Average Recall", "(AR)", "0.50:0.95", "all", 1, self.ar1),
            ("Average Recall", "(AR)", "0.50:0.95", "all", 10, self.ar10),
            ("Average Recall", "(AR)", "0.50:0.95", "all", 100, self.ar100),
            ("Average Recall", "(AR)", "0.50:0.95", "small", 100, self.ar_small),
            ("Average Recall", "(AR)", "0.50:0.95", "medium", 100, self.ar_medium),
            ("Average Recall", "(AR)", "0.50:0.95", "large", 100, self.ar_large),
        ]
        if occlusion:
            rows += [
                ("Average Recall", "(AR)", "0.50:0.95", f"occ={name}", 100, value)
                for name, value in (
                    ("light", self.ar_light),
                    ("medium", self.ar_medium_occlusion),
                    ("heavy", self.ar_heavy),
                )
            ]
        lines = [
            f" {title:<18} {kind} @[ IoU={iou:<9} | area={area:>10s} | maxDets={dets:>3d} ]"
            f" = {value:0.3f}"
            for title, kind, iou, area, dets, value in rows
        ]
        lines.append("")
        lines.append(f" {'category':<24} AP")
        lines += [f" {name:<24} {value:0.3f}" for name, value in self.per_category_ap.items()]
        return "\n".join(lines)


def tube_ious(
    detections: list[Detection], instances: list[GroundTruthInstance], num_frames: int
) -> np.ndarray:
    """Spatio-temporal IoU of every result tube with every ground-truth tube of one video.

    Args:
        detections (list[Detection]), instances (list[GroundTruthInstance]): of one video.
        num_frames (int).
    Returns:
        ndarray[D, G] float64.
    """
    intersections = np.zeros((len(detections), len(instances)))  # [D, G] summed over frames
    for frame in range(num_frames):
        d_present = [i for i, d in enumerate(detections) if d.tube.areas[frame] > 0]
        g_present = [j for j, g in enumerate(instances) if g.tube.areas[frame] > 0]
        if not d_present or not g_present:
            continue
        frame_iou = np.asarray(
            mask_utils.iou(
                [detections[i].tube.masks[frame] for i in d_present],
                [instances[j].tube.masks[frame] for j in g_present],
                [0] * len(g_present),
            )
        ).reshape(len(d_present), len(g_present))  # [d, g]
        d_area = np.array([detections[i].tube.areas[frame] for i in d_present])[:, None]
        g_area = np.array([instances[j].tube.areas[frame] for j in g_present])[None, :]
        intersections[np.ix_(d_present, g_present)] += np.rint(
            frame_iou * (d_area + g_area) / (1.0 + frame_iou)
        )
    d_total = np.array([d.tube.areas.sum() for d in detections])[:, None]
    g_total = np.array([g.tube.areas.sum() for g in instances])[None, :]
    unions = d_total + g_total - intersections
    return np.divide(intersections, unions, out=np.zeros_like(intersections), where=unions > 0)


def _ignored(instance, subset):
    area_low, area_high = subset.area_range
    if instance.iscrowd or not area_low <= instance.mean_area <= area_high:
        return True
    if instance.occlusion_score is None:
        return False
    occlusion_low, occlusion_high = subset.occlusion_range
    return not occlusion_low <= instance.occlusion_score <= occlusion_high


def _match(ious, instances, detections, subset):
    """Greedy matching of one (video, category) for one subset (``evaluateVid``).

    Args:
        ious (ndarray[D, G]): results in score order, ground truth in file order.
    Returns:
        matched (ndarray[T, D] bool), result_ignored (ndarray[T, D] bool),
        truth_ignored (ndarray[G] bool).
    """
    truth_ignored = np.array([_ignored(g, subset) for g in instances], dtype=bool)
    order = np.argsort(truth_ignored, kind="mergesort")  # non-ignored first
    truth_ignored = truth_ignored[order]
    crowd = [instances[j].iscrowd for j in order]
    ious = ious[:, order]
    num_thresholds, num_results = len(IOU_THRESHOLDS), len(detections)
    matched = np.zeros((num_thresholds, num_results), dtype=bool)
    result_ignored = np.zeros((num_thresholds, num_results), dtype=bool)
    for t, threshold in enumerate(IOU_THRESHOLDS):
        truth_taken = np.zeros(len(order), dtype=bool)
        for d in range(num_results):
            best_iou, best = min(threshold, 1 - 1e-10), -1
            for g in range(len(order)):
                if truth_taken[g] and not crowd[g]:
                    continue
                if best > -1 and not truth_ignored[best] and truth_ignored[g]:
                    break  # ground truth is sorted: only ignored ones follow
                if ious[d, g] < best_iou:
                    continue
                best_iou, best = ious[d, g], g
            if best == -1:
                continue
            matched[t, d] = True
            result_ignored[t, d] = truth_ignored[best]
            truth_taken[best] = True
    area_low, area_high = subset.area_range
    outside = np.array(
        [not area_low <= d.tube.mean_area <= area_high for d in detections], dtype=bool
    )
    result_ignored |= ~matched & outside[None, :]
    return matched, result_ignored, truth_ignored


def _precision_recall(scores, matched, ignored, num_truth):
    """One (category, subset, maxDets) setting from its pooled results (``accumulate``).

    Returns:
        precision (ndarray[T, R]), recall (ndarray[T]).
    """
    order = np.argsort(-scores, kind="mergesort")
    true_positive = (matched & ~ignored)[:, order]
    false_positive = (~matched & ~ignored)[:, order]
    tp_sum = np.cumsum(true_positive, axis=1, dtype=np.float64)  # [T, D]
    fp_sum = np.cumsum(false_positive, axis=1, dtype=np.float64)
    num_results = order.size
    precision = np.zeros((len(IOU_THRESHOLDS), len(RECALL_THRESHOLDS)))
    recall = np.zeros(len(IOU_THRESHOLDS))
    if num_results == 0:
        return precision, recall
    for t in range(len(IOU_THRESHOLDS)):
        rc = tp_sum[t] / num_truth
        pr = tp_sum[t] / (fp_sum[t] + tp_sum[t] + np.spacing(1))
        pr = np.maximum.accumulate(pr[::-1])[::-1]  # best precision at this recall or beyond
        positions = np.searchsorted(rc, RECALL_THRESHOLDS, side="left")
        reached = positions < num_results
        precision[t, reached] = pr[positions[reached]]
        recall[t] = rc[-1]
    return precision, recall


def _mean_valid(values):
    valid = values[values > -1]
    return float(valid.mean()) if valid.size else -1.0


def evaluate_video_ap(
    ground_truth: PathLike | dict | VideoGroundTruth,
    results: PathLike | list,
    *,
    occlusion: bool = False,
) -> VideoAPResult:
    """Video AP/AR of results against ground truth (YouTube-VIS; OVIS with ``occlusion``).

    Args:
        ground_truth (str, PathLike, dict or VideoGroundTruth): the annotation file.
        results (str, PathLike, list or list[Detection]): the results file (JSON or CodaLab
            zip).
        occlusion (bool): add the OVIS occlusion breakdown (needs ``occlusion`` in every
            ground-truth annotation).
    Returns:
        VideoAPResult.
    """
    if not isinstance(ground_truth, VideoGroundTruth):
        ground_truth = load_ground_truth(ground_truth, occlusion=occlusion)
    elif occlusion and any(g.occlusion_score is None for g in ground_truth.instances):
        raise ValueError(
            "ground truth was loaded without occlusion scores: load it with "
            "load_ground_truth(..., occlusion=True)"
        )
    if not (isinstance(results, list) and all(isinstance(d, Detection) for d in results)):
        results = load_results(results, ground_truth)
    subsets = OVIS_SUBSETS if occlusion else YTVIS_SUBSETS

    truth_by_key, results_by_key = defaultdict(list), defaultdict(list)
    for instance in ground_truth.instances:
        truth_by_key[instance.video_id, instance.category_id].append(instance)
    for detection in results:
        results_by_key[detection.video_id, detection.category_id].append(detection)

    category_ids = sorted(ground_truth.categories)
    video_ids = sorted(ground_truth.videos)
    num_t, num_r, num_s = len(IOU_THRESHOLDS), len(RECALL_THRESHOLDS), len(subsets)
    precision = -np.ones((num_t, num_r, len(category_ids), num_s, len(MAX_DETECTIONS)))
    recall = -np.ones((num_t, len(category_ids), num_s, len(MAX_DETECTIONS)))
    for k, category_id in enumerate(category_ids):
        # per subset: one (scores[D], matched[T, D], ignored[T, D], truth_ignored[G]) per video
        per_subset = [[] for _ in subsets]
        for video_id in video_ids:
            instances = truth_by_key[video_id, category_id]
            detections = results_by_key[video_id, category_id]
            if not instances and not detections:
                continue
            order = np.argsort([-d.score for d in detections], kind="mergesort")
            detections = [detections[i] for i in order[: MAX_DETECTIONS[-1]]]
            ious = tube_ious(detections, instances, ground_truth.videos[video_id].num_frames)
            scores = np.array([d.score for d in detections], dtype=np.float64)
            for s, subset in enumerate(subsets):
                per_subset[s].append((scores, *_match(ious, instances, detections, subset)))
        for s in range(num_s):
            if not per_subset[s]:
                continue
            truth_ignored = np.concatenate([entry[3] for entry in per_subset[s]])
            num_truth = int(np.count_nonzero(~truth_ignored))
            if num_truth == 0:
                continue
            for m, max_dets in enumerate(MAX_DETECTIONS):
                scores = np.concatenate([entry[0][:max_dets] for entry in per_subset[s]])
                matched = np.concatenate([entry[1][:, :max_dets] for entry in per_subset[s]], 1)
                ignored = np.concatenate([entry[2][:, :max_dets] for entry in per_subset[s]], 1)
                precision[:, :, k, s, m], recall[:, k, s, m] = _precision_recall(
                    scores, matched, ignored, num_truth
                )

    subset_index = {subset.name: s for s, subset in enumerate(subsets)}
    last = len(MAX_DETECTIONS) - 1

    def ap(subset="all", threshold=None):
        values = precision[..., subset_index[subset], last]
        if threshold is not None:
            values = values[np.isclose(IOU_THRESHOLDS, threshold)]
        return _mean_valid(values)

    def ar(subset="all", max_dets_index=last):
        return _mean_valid(recall[:, :, subset_index[subset], max_dets_index])

    per_category = {
        ground_truth.categories[c]: _mean_valid(precision[:, :, k, 0, last])
        for k, c in enumerate(category_ids)
    }
    occlusion_fields = {}
    if occlusion:
        occlusion_fields = dict(
            ap_light=ap("occlusion_light"),
            ap_medium_occlusion=ap("occlusion_medium"),
            ap_heavy=ap("occlusion_heavy"),
            ar_light=ar("occlusion_light"),
            ar_medium_occlusion=ar("occlusion_medium"),
            ar_heavy=ar("occlusion_heavy"),
        )
    return VideoAPResult(
        ap=ap(),
        ap50=ap(threshold=0.5),
        ap75=ap(threshold=0.75),
        ap_small=ap("small"),
        ap_medium=ap("medium"),
        ap_large=ap("large"),
        ar1=ar(max_dets_index=0),
        ar10=ar(max_dets_index=1),
        ar100=ar(),
        ar_small=ar("small"),
        ar_medium=ar("medium"),
        ar_large=ar("large"),
        per_category_ap=per_category,
        precision=precision,
        recall=recall,
        subsets=subsets,
        **occlusion_fields,
    )
