"""KITTI-MOTS and DAVIS adapters on tiny fixtures written here, with hand-worked numbers."""

import os

import numpy as np
import pytest
from evaluation_builders import box, rle

pytest.importorskip("trackeval", reason="needs trackeval (pip install --no-deps trackeval)")
pytest.importorskip("PIL")
pytest.importorskip("skimage")

from PIL import Image  # noqa: E402

from stemseg_fast.evaluation.trackeval_adapters import (  # noqa: E402
    evaluate_davis,
    evaluate_kitti_mots,
)

# trackeval's F measure decodes masks through pycocotools, which NumPy 2 warns about
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

HEIGHT, WIDTH = 20, 30
CAR = box(HEIGHT, WIDTH, 2, 12, 0, 10)  # 100 px
CAR_SHIFTED = box(HEIGHT, WIDTH, 2, 12, 2, 12)  # IoU 2/3 with CAR
PEDESTRIAN = box(HEIGHT, WIDTH, 2, 12, 20, 25)


def kitti_line(frame, track_id, class_id, mask):
    encoded = rle(mask)
    return f"{frame} {track_id} {class_id} {HEIGHT} {WIDTH} {encoded['counts']}\n"


def write_sequence(folder, name, lines):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, f"{name}.txt"), "w") as handle:
        handle.writelines(lines)


@pytest.fixture
def kitti_truth(tmp_path):
    """Sequence 0000: a car in frames 0-3, a pedestrian in frames 0-1."""
    folder = tmp_path / "gt"
    lines = [kitti_line(t, 1001, 1, CAR) for t in range(4)]
    lines += [kitti_line(t, 2001, 2, PEDESTRIAN) for t in range(2)]
    write_sequence(folder, "0000", lines)
    return str(folder)


def test_kitti_mots_perfect_results_score_one(kitti_truth, tmp_path):
    lines = [kitti_line(t, 5, 1, CAR) for t in range(4)]
    lines += [kitti_line(t, 6, 2, PEDESTRIAN) for t in range(2)]
    write_sequence(tmp_path / "res", "0000", lines)
    result = evaluate_kitti_mots(kitti_truth, str(tmp_path / "res"))
    for name in ("car", "pedestrian"):
        metrics = result.classes[name]
        assert metrics.hota == pytest.approx(1.0) and metrics.smotsa == pytest.approx(1.0)
        assert metrics.motsa == pytest.approx(1.0) and metrics.idf1 == pytest.approx(1.0)
    assert "sMOTSA" in result.format_table()


def test_kitti_mots_hand_worked_clear_numbers(kitti_truth, tmp_path):
    # car: IoU 2/3 everywhere (matches at >= 0.5) and an id switch after frame 1
    lines = [kitti_line(t, 5 if t < 2 else 7, 1, CAR_SHIFTED) for t in range(4)]
    # pedestrian: found in frame 0 only
    lines += [kitti_line(0, 6, 2, PEDESTRIAN)]
    write_sequence(tmp_path / "res", "0000", lines)
    result = evaluate_kitti_mots(kitti_truth, str(tmp_path / "res"))
    car, pedestrian = result.classes["car"], result.classes["pedestrian"]
    assert car.id_switches == 1 and car.true_positives == 4
    assert car.motsa == pytest.approx((4 - 0 - 1) / 4)
    assert car.smotsa == pytest.approx((4 * 2 / 3 - 0 - 1) / 4)
    assert car.motsp == pytest.approx(2 / 3)
    assert pedestrian.false_negatives == 1 and pedestrian.motsa == pytest.approx(0.5)
    assert 0.0 < car.hota < 1.0
    assert result.per_sequence["0000"]["car"] == car


def test_kitti_mots_errors(kitti_truth, tmp_path):
    results = tmp_path / "res"
    os.makedirs(results)
    with pytest.raises(ValueError, match="no file 0000.txt"):
        evaluate_kitti_mots(kitti_truth, str(results))
    write_sequence(results, "0000", ["0 5 1 20 30 garbage!\n"])
    with pytest.raises(ValueError, match=r"line 1: malformed RLE"):
        evaluate_kitti_mots(kitti_truth, str(results))
    write_sequence(results, "0000", [kitti_line(0, 5, 1, CAR).replace(" 20 30 ", " 20 31 ")])
    with pytest.raises(ValueError, match="runs add up to 600, expected height x width = 620"):
        evaluate_kitti_mots(kitti_truth, str(results))
    write_sequence(results, "0000", [kitti_line(0, 5, 7, CAR)])
    with pytest.raises(ValueError, match="unknown class id 7"):
        evaluate_kitti_mots(kitti_truth, str(results))
    write_sequence(results, "0000", [kitti_line(0, 5, 1, CAR), kitti_line(0, 6, 1, CAR_SHIFTED)])
    with pytest.raises(ValueError, match="overlapping masks"):
        evaluate_kitti_mots(kitti_truth, str(results))
    with pytest.raises(ValueError, match="no file for sequence 0002"):
        evaluate_kitti_mots(kitti_truth, str(results), sequences=["0002"])


def write_pngs(folder, frames):
    os.makedirs(folder, exist_ok=True)
    palette = (np.arange(256)[:, None] * np.array([[37, 91, 53]]) % 256).astype(np.uint8)
    for index, labels in enumerate(frames):
        image = Image.fromarray(labels.astype(np.uint8), mode="P")
        image.putpalette(palette.flatten().tolist())
        image.save(os.path.join(folder, f"{index:05d}.png"))


def label_map(*masks_and_ids):
    labels = np.zeros((HEIGHT, WIDTH), dtype=np.uint8)
    for mask, label in masks_and_ids:
        labels[mask.astype(bool)] = label
    return labels


@pytest.fixture
def davis_truth(tmp_path):
    """Sequence 'bear': object 1 (the car box) and object 2 (the pedestrian box), 3 frames,
    with a void band the results may cover freely."""
    frames = []
    for _ in range(3):
        labels = label_map((CAR, 1), (PEDESTRIAN, 2))
        labels[18:, :] = 255
        frames.append(labels)
    write_pngs(tmp_path / "gt" / "bear", frames)
    return str(tmp_path / "gt")


def test_davis_matches_proposals_to_objects(davis_truth, tmp_path):
    # object ids swapped, an extra proposal elsewhere, and the void band painted over
    frames = []
    for _ in range(3):
        labels = label_map((PEDESTRIAN, 1), (CAR, 3), (box(HEIGHT, WIDTH, 14, 17, 0, 5), 2))
        labels[18:, :12] = 3
        frames.append(labels)
    write_pngs(tmp_path / "res" / "bear", frames)
    result = evaluate_davis(davis_truth, str(tmp_path / "res"))
    assert result.num_objects == 2
    assert result.j_mean == pytest.approx(1.0) and result.f_mean == pytest.approx(1.0)
    assert result.j_and_f == pytest.approx(1.0) and result.per_sequence["bear"] == 1.0


def test_davis_hand_worked_j(davis_truth, tmp_path):
    # object 1 found with IoU 2/3 in every frame, object 2 missed: J-Mean = (2/3 + 0) / 2
    write_pngs(tmp_path / "res" / "bear", [label_map((CAR_SHIFTED, 4))] * 3)
    result = evaluate_davis(davis_truth, str(tmp_path / "res"))
    assert result.j_mean == pytest.approx(1 / 3)
    assert result.j_recall == pytest.approx(0.5)
    assert 0.0 < result.f_mean < 0.5
    assert result.j_and_f == pytest.approx((result.j_mean + result.f_mean) / 2)


def test_davis_errors(davis_truth, tmp_path):
    results = tmp_path / "res"
    os.makedirs(results)
    with pytest.raises(ValueError, match="no folder for sequence bear"):
        evaluate_davis(davis_truth, str(results))
    write_pngs(results / "bear", [label_map((CAR, 1))] * 2)
    with pytest.raises(ValueError, match=r"missing \['00002.png'\]"):
        evaluate_davis(davis_truth, str(results))
    Image.fromarray(np.zeros((HEIGHT + 1, WIDTH), np.uint8), mode="L").save(
        results / "bear" / "00002.png"
    )
    with pytest.raises(ValueError, match="size 21x30 differs"):
        evaluate_davis(davis_truth, str(results))
    many = np.arange(HEIGHT * WIDTH).reshape(HEIGHT, WIDTH) % 22 + 1
    write_pngs(results / "bear", [many] * 3)
    with pytest.raises(ValueError, match="proposals"):
        evaluate_davis(davis_truth, str(results))
