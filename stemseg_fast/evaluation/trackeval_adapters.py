"""KITTI-MOTS (HOTA, sMOTSA, MOTSA, IDF1) and DAVIS unsupervised (J&F) through ``trackeval``
1.3, the benchmarks' own evaluation code: these adapters only check the inputs, lay out the
folders trackeval expects in a temporary directory and read its results back.

* KITTI-MOTS: ``trackeval.datasets.KittiMOTS`` with ``HOTA``, ``CLEAR`` (MOTA of masks = MOTSA,
  MOTP = MOTSP, sMOTA = sMOTSA; a match needs mask IoU >= 0.5) and ``Identity``. Files are the
  KITTI-MOTS txt format, one per sequence (``<seq>.txt``, lines ``frame track_id class_id
  height width rle``; class 1 car, 2 pedestrian, 10 ignore region in the ground truth). A
  sequence is as long as its last annotated or predicted frame + 1: frames past both hold no
  objects and change no metric.
* DAVIS: ``trackeval.datasets.DAVIS`` with ``JAndF``. Folders of indexed PNGs, one sub-folder
  per sequence (0 background, k object k, 255 void in the ground truth). Unsupervised DAVIS
  pairs proposals with objects by a Hungarian assignment; davis2017-evaluation
  (``_evaluate_unsupervised``) maximises the mean of J and F over the sequence, trackeval's
  ``JAndF`` maximises J alone unless ``optim_type = "J&F"``, which we set. At most 20
  proposals per sequence, as the challenge (``max_n_proposals``).

Installing trackeval: its metadata asks for ``opencv-python``, whose wheel needs libGL and
shares the ``cv2`` module with our ``opencv-python-headless``; the metrics here use ``cv2``
only for ``cv2.dilate`` (F), which the headless wheel has. So install it with
``pip install --no-deps trackeval==1.3.0`` plus the packages it imports on these paths:
pillow (PNG reading), scikit-image (``disk`` for F), tabulate (imported by trackeval's dataset
package; without it ``import trackeval`` prints an error line).
"""

import contextlib
import dataclasses
import io
import logging
import os
import shutil
import tempfile
from typing import Any, Dict, Optional, Sequence

import numpy as np

from ..io.kitti_mots import read_kitti_mots_txt
from ..io.rle import compressed_run_lengths
from .annotations import MAX_VIDEO_EXTENT

logger = logging.getLogger(__name__)

TRACKER_NAME = "stemseg_fast"
KITTI_MOTS_CLASSES = ("car", "pedestrian")
KITTI_MOTS_CLASS_IDS = {1: "car", 2: "pedestrian", 10: "ignore"}
# The official STEm-Seg validation sequences (config/defaults.yaml DATA.KITTI_MOTS.VAL_SEQS).
KITTI_MOTS_VAL_SEQUENCES = ("0002", "0006", "0007", "0008", "0010", "0013", "0014", "0016", "0018")
"""The KITTI-MOTS validation sequences (Voigtlaender et al., MOTS, 2019), trackeval's
``evaluate_mots.seqmap.val``."""
DAVIS_MAX_PROPOSALS = 20
# trackeval builds per-frame lists up to the largest index; KITTI sequences have ~1,100 frames.
MAX_SEQUENCE_FRAMES = 1_000_000
INSTALL_HINT = "pip install --no-deps trackeval==1.3.0 && pip install pillow tabulate scikit-image"


def _import_trackeval():
    try:
        with _quiet():
            import trackeval
    except ImportError as error:
        raise ImportError(
            f"KITTI-MOTS and DAVIS evaluation need trackeval ({error}); install "
            f"it with: {INSTALL_HINT}"
        ) from None
    return trackeval


@contextlib.contextmanager
def _quiet():
    """trackeval prints configs, progress and caught tracebacks: keep them for debug logs."""
    captured = io.StringIO()
    try:
        with contextlib.redirect_stdout(captured), contextlib.redirect_stderr(captured):
            yield
    finally:
        if captured.getvalue():
            logger.debug("trackeval output:\n%s", captured.getvalue())


def _run(trackeval, dataset, metrics):
    evaluator = trackeval.Evaluator(
        {
            "USE_PARALLEL": False,
            "BREAK_ON_ERROR": True,
            "LOG_ON_ERROR": None,
            "PRINT_RESULTS": False,
            "PRINT_CONFIG": False,
            "TIME_PROGRESS": False,
            "OUTPUT_SUMMARY": False,
            "OUTPUT_DETAILED": False,
            "PLOT_CURVES": False,
        }
    )
    try:
        with _quiet():
            results, _ = evaluator.evaluate([dataset], metrics)
    except trackeval.utils.TrackEvalException as error:
        raise ValueError(f"trackeval: {error}") from None
    return results[dataset.get_name()][TRACKER_NAME]


def _link(source, target):
    """Place ``source`` at ``target``: a symbolic link where the system allows, else a copy."""
    try:
        os.symlink(os.path.abspath(source), target)
    except OSError:
        if os.path.isdir(source):
            shutil.copytree(source, target)
        else:
            shutil.copyfile(source, target)


# ------------------------------------------------------------------------------- KITTI-MOTS


@dataclasses.dataclass(frozen=True)
class MOTSClassResult:
    """One class's KITTI-MOTS metrics (fractions in [0, 1]; HOTA family averaged over the 19
    localisation thresholds .05:.05:.95 as trackeval reports it)."""

    hota: float
    det_a: float
    ass_a: float
    loc_a: float
    smotsa: float
    motsa: float
    motsp: float
    idf1: float
    id_switches: int
    true_positives: int
    false_positives: int
    false_negatives: int


@dataclasses.dataclass(frozen=True)
class MOTSResult:
    """Attributes:
    classes (dict[str, MOTSClassResult]): over all sequences, by class name.
    per_sequence (dict[str, dict[str, MOTSClassResult]]): sequence -> class -> metrics.
    """

    classes: dict
    per_sequence: dict

    def summary(self) -> Dict[str, Any]:
        return {name: dataclasses.asdict(value) for name, value in self.classes.items()}

    def format_table(self) -> str:
        header = (
            f"{'class':<12}{'HOTA':>8}{'DetA':>8}{'AssA':>8}{'LocA':>8}{'sMOTSA':>8}"
            f"{'MOTSA':>8}{'MOTSP':>8}{'IDF1':>8}{'IDSW':>7}"
        )
        lines = [header]
        for name, m in self.classes.items():
            values = [m.hota, m.det_a, m.ass_a, m.loc_a, m.smotsa, m.motsa, m.motsp, m.idf1]
            lines.append(
                f"{name:<12}" + "".join(f"{v:8.3f}" for v in values) + f"{m.id_switches:7d}"
            )
        return "\n".join(lines)  # fractions in [0, 1], as the AP tables and every JSON


def _sequence_files(folder, what):
    if not os.path.isdir(folder):
        raise ValueError(f"{what}: not a folder: {folder}")
    return {
        name[:-4]: os.path.join(folder, name)
        for name in sorted(os.listdir(folder))
        if name.endswith(".txt")
    }


def _check_kitti_mots_file(path, what):
    """Check a KITTI-MOTS txt file line by line; return its last frame index (-1 if empty).

    trackeval reports a malformed line without its number, and pycocotools hangs on an RLE
    whose runs fall short of height x width, so the lines are checked here first."""
    last_frame = -1
    for number, line in enumerate(read_kitti_mots_txt(path, what), start=1):
        where = f"{what} {path} line {number}"
        if not 0 <= line.frame < MAX_SEQUENCE_FRAMES:
            raise ValueError(
                f"{where}: frame index {line.frame} is outside [0, {MAX_SEQUENCE_FRAMES})"
            )
        if not (1 <= line.height <= MAX_VIDEO_EXTENT and 1 <= line.width <= MAX_VIDEO_EXTENT):
            raise ValueError(
                f"{where}: mask size {line.height}x{line.width} (h x w) is outside "
                f"[1, {MAX_VIDEO_EXTENT}]"
            )
        if line.class_id not in KITTI_MOTS_CLASS_IDS:
            raise ValueError(
                f"{where}: unknown class id {line.class_id}; expected "
                f"{sorted(KITTI_MOTS_CLASS_IDS)} ({KITTI_MOTS_CLASS_IDS})"
            )
        try:
            runs = compressed_run_lengths(line.counts)
        except ValueError as error:
            raise ValueError(f"{where}: malformed RLE: {error}") from None
        if (runs < 0).any() or int(runs.sum()) != line.height * line.width:
            raise ValueError(
                f"{where}: malformed RLE: runs add up to {int(runs.sum())}, "
                f"expected height x width = {line.height * line.width}"
            )
        last_frame = max(last_frame, line.frame)
    return last_frame


def evaluate_kitti_mots(
    ground_truth_dir: str,
    results_dir: str,
    *,
    sequences: Optional[Sequence[str]] = None,
    classes: Sequence[str] = KITTI_MOTS_CLASSES,
) -> MOTSResult:
    """HOTA, sMOTSA, MOTSA, IDF1 of KITTI-MOTS txt results.

    Args:
        ground_truth_dir (str): folder of ``<seq>.txt`` ground truth (KITTI-MOTS
            ``instances_txt``).
        results_dir (str): folder of ``<seq>.txt`` results.
        sequences (list[str] or None): sequences to score; None = every ground-truth sequence.
            ``KITTI_MOTS_VAL_SEQUENCES`` for the validation split.
        classes (tuple[str]): subset of ("car", "pedestrian").
    Returns:
        MOTSResult.
    """
    unknown = set(classes) - set(KITTI_MOTS_CLASSES)
    if unknown or not classes:
        raise ValueError(
            f"classes must be a non-empty subset of {KITTI_MOTS_CLASSES}, got {list(classes)}"
        )
    truth_files = _sequence_files(ground_truth_dir, "ground truth")
    result_files = _sequence_files(results_dir, "results")
    sequences = list(truth_files) if sequences is None else list(sequences)
    if not sequences:
        raise ValueError(f"ground truth: no <sequence>.txt files in {ground_truth_dir}")
    for sequence in sequences:
        if sequence not in truth_files:
            raise ValueError(f"ground truth: no file for sequence {sequence} in {ground_truth_dir}")
        if sequence not in result_files:
            raise ValueError(
                f"results: no file {sequence}.txt in {results_dir} (pass "
                f"--sequences to score a subset)"
            )
    lengths = {}
    for sequence in sequences:
        last = max(
            _check_kitti_mots_file(truth_files[sequence], "ground truth"),
            _check_kitti_mots_file(result_files[sequence], "results"),
        )
        lengths[sequence] = last + 1 if last >= 0 else 1

    trackeval = _import_trackeval()
    with tempfile.TemporaryDirectory(prefix="stemseg_kitti_mots_") as work:
        truth_layout = os.path.join(work, "gt", "label_02")
        tracker_layout = os.path.join(work, "trackers", TRACKER_NAME, "data")
        os.makedirs(truth_layout)
        os.makedirs(tracker_layout)
        for sequence in sequences:
            _link(truth_files[sequence], os.path.join(truth_layout, f"{sequence}.txt"))
            _link(result_files[sequence], os.path.join(tracker_layout, f"{sequence}.txt"))
        with _quiet():
            dataset = trackeval.datasets.KittiMOTS(
                {
                    "GT_FOLDER": os.path.join(work, "gt"),
                    "TRACKERS_FOLDER": os.path.join(work, "trackers"),
                    "OUTPUT_FOLDER": os.path.join(work, "output"),
                    "TRACKERS_TO_EVAL": [TRACKER_NAME],
                    "CLASSES_TO_EVAL": list(classes),
                    "SEQ_INFO": lengths,
                    "PRINT_CONFIG": False,
                }
            )
            metrics = [
                trackeval.metrics.HOTA({"PRINT_CONFIG": False}),
                trackeval.metrics.CLEAR({"PRINT_CONFIG": False, "THRESHOLD": 0.5}),
                trackeval.metrics.Identity({"PRINT_CONFIG": False, "THRESHOLD": 0.5}),
            ]
        raw = _run(trackeval, dataset, metrics)

    def read(entry):
        hota, clear, identity = entry["HOTA"], entry["CLEAR"], entry["Identity"]
        return MOTSClassResult(
            hota=float(np.mean(hota["HOTA"])),
            det_a=float(np.mean(hota["DetA"])),
            ass_a=float(np.mean(hota["AssA"])),
            loc_a=float(np.mean(hota["LocA"])),
            smotsa=float(clear["sMOTA"]),
            motsa=float(clear["MOTA"]),
            motsp=float(clear["MOTP"]),
            idf1=float(identity["IDF1"]),
            id_switches=int(clear["IDSW"]),
            true_positives=int(clear["CLR_TP"]),
            false_positives=int(clear["CLR_FP"]),
            false_negatives=int(clear["CLR_FN"]),
        )

    return MOTSResult(
        classes={name: read(raw["COMBINED_SEQ"][name]) for name in classes},
        per_sequence={
            sequence: {name: read(raw[sequence][name]) for name in classes}
            for sequence in sequences
        },
    )


# ------------------------------------------------------------------------------------ DAVIS


@dataclasses.dataclass(frozen=True)
class DavisResult:
    """DAVIS unsupervised J&F (fractions in [0, 1]), means over all ground-truth objects.

    Attributes:
        per_sequence (dict[str, float]): J&F of each sequence.
    """

    j_and_f: float
    j_mean: float
    j_recall: float
    j_decay: float
    f_mean: float
    f_recall: float
    f_decay: float
    num_objects: int
    per_sequence: dict

    def summary(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    def format_table(self) -> str:
        names = ("J&F-Mean", "J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay")
        values = (
            self.j_and_f,
            self.j_mean,
            self.j_recall,
            self.j_decay,
            self.f_mean,
            self.f_recall,
            self.f_decay,
        )
        lines = [
            "".join(f"{name:>10}" for name in names),
            "".join(f"{value:10.3f}" for value in values),
            "",
            f" {'sequence':<24} J&F",
        ]
        lines += [f" {name:<24} {value:.3f}" for name, value in self.per_sequence.items()]
        return "\n".join(lines)  # fractions in [0, 1], as the AP tables and every JSON


def _png_frames(folder):
    return sorted(name for name in os.listdir(folder) if name.lower().endswith(".png"))


def _check_davis_sequence(truth_dir, result_dir, sequence):
    from PIL import Image

    truth_frames, result_frames = _png_frames(truth_dir), _png_frames(result_dir)
    if not truth_frames:
        raise ValueError(f"ground truth: no PNG frames in {truth_dir}")
    if truth_frames != result_frames:
        missing = sorted(set(truth_frames) - set(result_frames))
        extra = sorted(set(result_frames) - set(truth_frames))
        raise ValueError(
            f"results: sequence {sequence}: PNG files differ from the ground truth "
            f"(missing {missing[:3]}{'...' if len(missing) > 3 else ''}, extra "
            f"{extra[:3]}{'...' if len(extra) > 3 else ''})"
        )
    for folder in (truth_dir, result_dir):
        if sorted(os.listdir(folder)) != truth_frames:
            raise ValueError(
                f"sequence {sequence}: {folder} holds files other than PNG frames; "
                f"trackeval reads every file there"
            )
    for name in truth_frames:
        with (
            Image.open(os.path.join(truth_dir, name)) as truth,
            Image.open(os.path.join(result_dir, name)) as result,
        ):
            for image, what in ((truth, "ground truth"), (result, "results")):
                if image.mode not in ("P", "L"):
                    raise ValueError(
                        f"{what}: sequence {sequence} frame {name}: expected an "
                        f"indexed (palette) or grayscale PNG, got mode {image.mode}"
                    )
            if truth.size != result.size:
                raise ValueError(
                    f"results: sequence {sequence} frame {name}: size "
                    f"{result.size[1]}x{result.size[0]} differs from the ground "
                    f"truth's {truth.size[1]}x{truth.size[0]}"
                )


def evaluate_davis(
    ground_truth_dir: str,
    results_dir: str,
    *,
    sequences: Optional[Sequence[str]] = None,
    max_proposals: int = DAVIS_MAX_PROPOSALS,
) -> DavisResult:
    """DAVIS unsupervised J&F of indexed-PNG results.

    Args:
        ground_truth_dir (str): one sub-folder of PNGs per sequence (DAVIS
            ``Annotations_unsupervised/480p``).
        results_dir (str): the same layout, the same file names.
        sequences (list[str] or None): None = every ground-truth sub-folder.
        max_proposals (int): most object ids allowed per sequence (0 = no limit).
    Returns:
        DavisResult.
    """
    for folder, what in ((ground_truth_dir, "ground truth"), (results_dir, "results")):
        if not os.path.isdir(folder):
            raise ValueError(f"{what}: not a folder: {folder}")
    if sequences is None:
        sequences = sorted(
            name
            for name in os.listdir(ground_truth_dir)
            if os.path.isdir(os.path.join(ground_truth_dir, name))
        )
    if not sequences:
        raise ValueError(f"ground truth: no sequence folders in {ground_truth_dir}")
    for sequence in sequences:
        truth_dir = os.path.join(ground_truth_dir, sequence)
        result_dir = os.path.join(results_dir, sequence)
        if not os.path.isdir(truth_dir):
            raise ValueError(f"ground truth: no folder for sequence {sequence}")
        if not os.path.isdir(result_dir):
            raise ValueError(f"results: no folder for sequence {sequence} in {results_dir}")
        _check_davis_sequence(truth_dir, result_dir, sequence)

    trackeval = _import_trackeval()
    with tempfile.TemporaryDirectory(prefix="stemseg_davis_") as work:
        truth_layout = os.path.join(work, "gt")
        tracker_layout = os.path.join(work, "trackers", TRACKER_NAME, "data")
        os.makedirs(truth_layout)
        os.makedirs(tracker_layout)
        for sequence in sequences:
            _link(os.path.join(ground_truth_dir, sequence), os.path.join(truth_layout, sequence))
            _link(os.path.join(results_dir, sequence), os.path.join(tracker_layout, sequence))
        with _quiet():
            dataset = trackeval.datasets.DAVIS(
                {
                    "GT_FOLDER": truth_layout,
                    "TRACKERS_FOLDER": os.path.join(work, "trackers"),
                    "OUTPUT_FOLDER": os.path.join(work, "output"),
                    "TRACKERS_TO_EVAL": [TRACKER_NAME],
                    "SEQ_INFO": {s: None for s in sequences},
                    "MAX_DETECTIONS": max_proposals,
                    "PRINT_CONFIG": False,
                }
            )
            metric = trackeval.metrics.JAndF()
        metric.optim_type = "J&F"  # davis2017-evaluation's unsupervised assignment
        try:
            raw = _run(trackeval, dataset, [metric])
        except Exception as error:
            # trackeval raises a bare Exception for too many proposals
            if "proposals" in str(error):
                raise ValueError(f"results: {error}") from None
            raise

    combined = raw["COMBINED_SEQ"]["general"]["JAndF"]
    return DavisResult(
        j_and_f=float(combined["J&F"]),
        j_mean=float(combined["J-Mean"]),
        j_recall=float(combined["J-Recall"]),
        j_decay=float(combined["J-Decay"]),
        f_mean=float(combined["F-Mean"]),
        f_recall=float(combined["F-Recall"]),
        f_decay=float(combined["F-Decay"]),
        num_objects=int(combined["num_gt_tracks"]),
        per_sequence={s: float(raw[s]["general"]["JAndF"]["J&F"]) for s in sequences},
    )
