"""Input checks of the YouTube-VIS / OVIS loaders: one clear ValueError naming the place."""

import json
import zipfile

import numpy as np
import pytest
from evaluation_builders import box, rle
from pycocotools import mask as mask_utils

from stemseg_fast.evaluation import evaluate_video_ap, load_ground_truth, load_results

SQUARE = box(32, 32, 0, 10, 0, 10)

# pycocotools.mask.decode trips a NumPy 2 deprecation inside pycocotools itself
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


@pytest.fixture
def scene(dataset):
    dataset.video(7, 2)
    dataset.truth(7, 1, [SQUARE, None])
    dataset.predict(7, 1, [SQUARE, None], 0.9)
    return dataset


def check_results(scene):
    return load_results(scene.results, load_ground_truth(scene.ground_truth()))


def test_accepted_segmentation_forms_give_the_same_tube(scene):
    encoded = mask_utils.encode(np.asfortranarray(SQUARE))
    flat = SQUARE.flatten(order="F")
    changes = np.flatnonzero(np.diff(flat)) + 1
    runs = np.diff(np.concatenate(([0], changes, [flat.size])))
    runs = ([0] if flat[0] else []) + runs.tolist()  # RLE starts with a background run
    forms = {
        "compressed str": rle(SQUARE),
        "compressed bytes": {"size": [32, 32], "counts": encoded["counts"]},
        "uncompressed": {"size": [32, 32], "counts": runs},
        "polygon": [[0, 0, 10, 0, 10, 10, 0, 10]],
    }
    truth = load_ground_truth(scene.ground_truth())
    for name, form in forms.items():
        for absent in (None, {}, []):
            scene.results[0]["segmentations"] = [form, absent]
            tube = load_results(scene.results, truth)[0].tube
            assert tube.masks[1] is None, name
            assert tube.areas[1] == 0, name
            # pycocotools rasterises a polygon's boundary pixels inside: compare by IoU
            assert mask_utils.iou([tube.masks[0]], [rle(SQUARE)], [0])[0, 0] > 0.8, name
            if name != "polygon":
                np.testing.assert_array_equal(mask_utils.decode(tube.masks[0]), SQUARE)


def test_results_zip_and_files(scene, tmp_path):
    truth_path = tmp_path / "gt.json"
    truth_path.write_text(json.dumps(scene.ground_truth()))
    archive = tmp_path / "results.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("results.json", json.dumps(scene.results))
    assert evaluate_video_ap(str(truth_path), str(archive)).ap == pytest.approx(1.0)


@pytest.mark.parametrize(
    "edit, message",
    [
        (
            lambda r: r.update(video_id=99),
            r"result #0 \(video 99\): video id 99 is not in the "
            r"ground truth",
        ),
        (lambda r: r.update(category_id=5), r"result #0 \(video 7\): unknown category id 5"),
        (lambda r: r.update(score=float("nan")), r"'score' must be a finite number"),
        (lambda r: r.pop("score"), r"result #0 \(video 7\): missing key 'score'"),
        (
            lambda r: r["segmentations"].append(None),
            r"3 segmentations for video 7 of 2 frames \(one per frame expected\)",
        ),
        (
            lambda r: r["segmentations"][0].update(size=[32, 33]),
            r"result #0 \(video 7\) frame 0: RLE size \[32, 33\] does not match the frame size "
            r"\[height, width\] = \[32, 32\]",
        ),
        (
            lambda r: r["segmentations"][0].update(counts="0:0"),
            r"frame 0: malformed RLE: run lengths add up to 10, expected height x width = 1024",
        ),
        (
            lambda r: r["segmentations"][0].update(counts="\x01bad"),
            r"frame 0: malformed RLE: characters outside the RLE alphabet",
        ),
        (
            lambda r: r["segmentations"][0].update(counts="5`"),
            r"frame 0: malformed RLE: the last run length is cut short",
        ),
        (
            lambda r: r["segmentations"][0].update(counts=[1000, 25]),
            r"frame 0: malformed RLE: run lengths add up to 1025",
        ),
        (
            lambda r: r["segmentations"].__setitem__(0, {"counts": "abc"}),
            r"frame 0: malformed RLE: expected \{'size': \[h, w\], 'counts': ...\}",
        ),
        (lambda r: r["segmentations"].__setitem__(0, [[1, 2, 3]]), r"frame 0: malformed polygon"),
    ],
)
def test_bad_results_name_the_entry(scene, edit, message):
    edit(scene.results[0])
    with pytest.raises(ValueError, match=message):
        check_results(scene)


@pytest.mark.parametrize(
    "edit, message",
    [
        (
            lambda d: d["annotations"][0].update(video_id=3),
            r"ground truth annotation 1 \(video 3\): unknown video id 3",
        ),
        (
            lambda d: d["annotations"][0].update(category_id=9),
            r"ground truth annotation 1 \(video 7\): unknown category id 9",
        ),
        (
            lambda d: d["annotations"][0]["segmentations"].pop(),
            r"1 segmentations for video 7 of 2 frames",
        ),
        (lambda d: d["annotations"][0].update(areas=[100]), r"'areas' must hold one finite number"),
        (
            lambda d: d["videos"][0].pop("length") and d["videos"][0].pop("file_names"),
            r"ground truth video 7: needs 'length' or 'file_names'",
        ),
        (lambda d: d["videos"].append(dict(d["videos"][0])), r"video 7: duplicate video id"),
        (lambda d: d.pop("categories"), r"ground truth: missing key 'categories'"),
    ],
)
def test_bad_ground_truth_names_the_annotation(scene, edit, message):
    truth = scene.ground_truth()
    edit(truth)
    with pytest.raises(ValueError, match=message):
        load_ground_truth(truth)


def test_ovis_needs_occlusion_labels(scene):
    with pytest.raises(ValueError, match=r"annotation 1 \(video 7\): missing key 'occlusion'"):
        evaluate_video_ap(scene.ground_truth(), scene.results, occlusion=True)
    scene.annotations[0]["occlusion"] = ["heavy_occlusion", None]
    with pytest.raises(ValueError, match=r"unknown occlusion labels \['heavy_occlusion'\]"):
        evaluate_video_ap(scene.ground_truth(), scene.results, occlusion=True)
    scene.annotations[0]["occlusion"] = [None, None]
    with pytest.raises(ValueError, match="'occlusion' has no labelled frame"):
        evaluate_video_ap(scene.ground_truth(), scene.results, occlusion=True)


def test_unreadable_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="ground truth .*does not exist"):
        load_ground_truth(str(tmp_path / "missing.json"))
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(ValueError, match="is not valid JSON"):
        load_ground_truth(str(broken))
    with pytest.raises(ValueError, match="expected a JSON object"):
        load_ground_truth([])


def test_empty_results_score_zero(scene):
    result = evaluate_video_ap(scene.ground_truth(), [])
    assert result.ap == 0.0 and result.ar100 == 0.0
