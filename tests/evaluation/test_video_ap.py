"""Video AP/AR: hand-worked cases, the IoU against dense masks, and image COCOeval on one-frame
videos."""

import contextlib
import io

import numpy as np
import pytest
import torch
from evaluation_builders import box, rle
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from stemseg_fast.evaluation import evaluate_video_ap, load_ground_truth, load_results
from stemseg_fast.io.rle import compressed_run_lengths
from stemseg_fast.evaluation.video_ap import IOU_THRESHOLDS, tube_ious

SQUARE = box(32, 32, 0, 10, 0, 10)  # 100 px
SHIFTED = box(32, 32, 0, 10, 2, 12)  # IoU with SQUARE: 80 / 120 = 2/3
ELSEWHERE = box(32, 32, 20, 30, 20, 30)  # disjoint from SQUARE
# thresholds .50 .55 .60 .65 pass an IoU of 2/3, the other six do not
PASSED_BY_TWO_THIRDS = int(np.sum(IOU_THRESHOLDS <= 2 / 3))


def evaluate(dataset, **options):
    return evaluate_video_ap(dataset.ground_truth(), dataset.results, **options)


def test_perfect_predictions_score_one(dataset):
    for video_id in (1, 2):
        dataset.video(video_id, 3)
        dataset.truth(video_id, 1, [SQUARE, SQUARE, None])
        dataset.truth(video_id, 2, [ELSEWHERE, None, ELSEWHERE])
        dataset.predict(video_id, 1, [SQUARE, SQUARE, None], 0.9)
        dataset.predict(video_id, 2, [ELSEWHERE, None, ELSEWHERE], 0.8)
    result = evaluate(dataset)
    for value in (
        result.ap,
        result.ap50,
        result.ap75,
        result.ar1,
        result.ar10,
        result.ar100,
        result.ap_small,
        result.ar_small,
    ):
        assert value == pytest.approx(1.0)
    assert result.ap_medium == -1 and result.ap_large == -1  # no ground truth there
    assert result.per_category_ap == {"person": pytest.approx(1.0), "dog": pytest.approx(1.0)}


def test_shifted_mask_passes_the_thresholds_up_to_its_iou(dataset):
    dataset.video(1, 1)
    dataset.truth(1, 1, [SQUARE])
    dataset.predict(1, 1, [SHIFTED], 0.5)
    result = evaluate(dataset)
    assert PASSED_BY_TWO_THIRDS == 4
    assert result.ap == pytest.approx(0.4)
    assert result.ap50 == pytest.approx(1.0) and result.ap75 == 0.0
    assert result.ar100 == pytest.approx(0.4)


def test_frames_missing_on_one_side_count_in_the_union_only(dataset):
    # ground truth absent in frame 1, prediction present there: IoU = 200 / 300 = 2/3
    dataset.video(1, 3)
    dataset.truth(1, 1, [SQUARE, None, SQUARE])
    dataset.predict(1, 1, [SQUARE, ELSEWHERE, SQUARE], 0.5)
    assert evaluate(dataset).ap == pytest.approx(0.4)
    # prediction missing one of two frames: IoU = 100 / 200 = 0.5, only the .50 threshold
    dataset.video(2, 2)
    dataset.truth(2, 2, [ELSEWHERE, ELSEWHERE])
    dataset.predict(2, 2, [ELSEWHERE, None], 0.5)
    assert evaluate(dataset).per_category_ap["dog"] == pytest.approx(0.1)


def test_wrong_class_is_a_miss(dataset):
    dataset.video(1, 1)
    dataset.truth(1, 1, [SQUARE])
    dataset.predict(1, 2, [SQUARE], 0.9)
    result = evaluate(dataset)
    assert result.ap == 0.0 and result.ar100 == 0.0
    assert result.per_category_ap == {"person": 0.0, "dog": -1.0}


def test_lower_scored_duplicate_costs_nothing_higher_scored_worse_duplicate_does(dataset):
    dataset.video(1, 1)
    dataset.truth(1, 1, [SQUARE])
    dataset.predict(1, 1, [SQUARE], 0.9)
    dataset.predict(1, 1, [SQUARE], 0.8)  # false positive after recall is already 1
    assert evaluate(dataset).ap == pytest.approx(1.0)
    # A better-scored shifted duplicate takes the match at IoU <= 2/3; above, it is a false
    # positive ranked first and the exact one reaches recall 1 at precision 1/2.
    dataset.predict(1, 1, [SHIFTED], 0.95)
    expected = (PASSED_BY_TWO_THIRDS * 1.0 + (10 - PASSED_BY_TWO_THIRDS) * 0.5) / 10
    assert evaluate(dataset).ap == pytest.approx(expected)  # 0.7


def test_precision_envelope_and_recall_points(dataset):
    # two objects; ranked results: hit, miss, hit -> precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1
    # interpolated: 1 for the 51 recall points 0..0.50, 2/3 for the 50 points 0.51..1
    dataset.video(1, 1)
    dataset.truth(1, 1, [SQUARE])
    dataset.truth(1, 1, [ELSEWHERE])
    dataset.predict(1, 1, [SQUARE], 0.9)
    dataset.predict(1, 1, [box(32, 32, 12, 18, 0, 6)], 0.8)
    dataset.predict(1, 1, [ELSEWHERE], 0.7)
    result = evaluate(dataset)
    assert result.ap == pytest.approx((51 * 1.0 + 50 * 2 / 3) / 101)
    assert result.ar1 == pytest.approx(0.5) and result.ar10 == pytest.approx(1.0)


def test_area_is_the_mean_over_the_frames_where_the_object_is_present(dataset):
    # 130 x 130 = 16900 px > 128² in its one present frame: medium (a mean over all three
    # frames, 5633 px, would make it small)
    dataset.video(1, 3, height=300, width=300)
    medium = box(300, 300, 0, 130, 0, 130)
    dataset.truth(1, 1, [medium, None, None])
    dataset.predict(1, 1, [medium, None, None], 0.9)
    # 260 x 260 = 67600 px > 256²: large
    large = box(300, 300, 20, 280, 20, 280)
    dataset.truth(1, 2, [large, large, large])
    dataset.predict(1, 2, [large, large, large], 0.9)
    result = evaluate(dataset)
    assert result.ap_small == -1
    assert result.ap_medium == pytest.approx(1.0) and result.ap_large == pytest.approx(1.0)
    assert result.ar_medium == pytest.approx(1.0) and result.ar_large == pytest.approx(1.0)


def test_unmatched_results_outside_the_area_range_are_ignored(dataset):
    dataset.video(1, 1, height=300, width=300)
    small = box(300, 300, 0, 10, 0, 10)
    dataset.truth(1, 1, [small])
    dataset.predict(1, 1, [box(300, 300, 20, 280, 20, 280)], 0.99)  # large false positive
    dataset.predict(1, 1, [small], 0.5)
    result = evaluate(dataset)
    assert result.ap_small == pytest.approx(1.0)  # the large miss does not count there
    assert result.ap == pytest.approx(0.5)  # but it does over all areas


def test_results_matching_crowd_are_ignored(dataset):
    dataset.video(1, 1)
    dataset.truth(1, 1, [SQUARE])
    dataset.truth(1, 1, [ELSEWHERE], iscrowd=1)
    dataset.predict(1, 1, [ELSEWHERE], 0.99)
    dataset.predict(1, 1, [ELSEWHERE], 0.98)  # a crowd region absorbs several results
    dataset.predict(1, 1, [SQUARE], 0.5)
    assert evaluate(dataset).ap == pytest.approx(1.0)
    dataset.annotations[1]["iscrowd"] = 0  # the comparison can fail
    assert evaluate(dataset).per_category_ap["person"] < 1.0


def test_ovis_occlusion_breakdown(dataset):
    dataset.video(1, 4)
    # occlusion scores: top half of [0, 0, .25] -> [0, .25] -> 0.125 (light);
    # top half of [0, .25, .75] -> [.25, .75] -> 0.5 (medium and heavy: bounds are inclusive)
    dataset.truth(
        1, 1, [SQUARE] * 4, occlusion=["no_occlusion", "no_occlusion", "slight_occlusion", None]
    )
    dataset.truth(
        1,
        1,
        [ELSEWHERE] * 4,
        occlusion=["no_occlusion", "slight_occlusion", "severe_occlusion", None],
    )
    dataset.predict(1, 1, [box(32, 32, 12, 18, 0, 6)] * 4, 0.99)  # a false positive first
    dataset.predict(1, 1, [SQUARE] * 4, 0.9)
    dataset.predict(1, 1, [ELSEWHERE] * 4, 0.8)
    result = evaluate(dataset, occlusion=True)
    # light: the second object is ignored, its match too; the false positive is not
    # (results carry no occlusion score) -> precision 1/2 at recall 1
    assert result.ap_light == pytest.approx(0.5)
    assert result.ap_medium_occlusion == pytest.approx(0.5)
    assert result.ap_heavy == pytest.approx(0.5)
    # all: hit at rank 2 and 3 -> precision 1/2 then 2/3, envelope 2/3 everywhere
    assert result.ap == pytest.approx(2 / 3)
    assert evaluate(dataset).ap_light is None  # YouTube-VIS has no occlusion breakdown
    assert "occ=light" in result.format_table()


def test_max_detections_cut_per_video_and_category(dataset):
    dataset.video(1, 1)
    for index in range(12):
        dataset.truth(1, 1, [box(32, 32, index * 2, index * 2 + 2, 0, 4)])
        dataset.predict(1, 1, [box(32, 32, index * 2, index * 2 + 2, 0, 4)], 1.0 - index / 100)
    result = evaluate(dataset)
    assert result.ar1 == pytest.approx(1 / 12) and result.ar10 == pytest.approx(10 / 12)
    assert result.ar100 == pytest.approx(1.0)


def _dense_tube_iou(d_masks, g_masks):
    intersection = union = 0
    for d, g in zip(d_masks, g_masks):
        if d is None and g is None:
            continue
        d = np.zeros_like(g) if d is None else d
        g = np.zeros_like(d) if g is None else g
        intersection += np.logical_and(d, g).sum()
        union += np.logical_or(d, g).sum()
    return intersection / union if union else 0.0


def _random_tube(generator, num_frames, height, width):
    masks = []
    for _ in range(num_frames):
        if generator.random() < 0.25:
            masks.append(None)
            continue
        mask = (generator.random((height, width)) < 0.3).astype(np.uint8)
        masks.append(mask * (generator.random() < 0.9))  # some present but empty frames
    return masks


def test_tube_iou_equals_dense_masks(dataset, rng):
    generator = np.random.default_rng(int(torch.randint(0, 2**31, (1,), generator=rng)))
    height, width, num_frames = 13, 17, 5
    dataset.video(1, num_frames, height, width)
    dense_truth = [_random_tube(generator, num_frames, height, width) for _ in range(3)]
    dense_results = [_random_tube(generator, num_frames, height, width) for _ in range(4)]
    for masks in dense_truth:
        dataset.truth(1, 1, masks)
    for masks in dense_results:
        dataset.predict(1, 1, masks, 0.5)
    truth = load_ground_truth(dataset.ground_truth())
    results = load_results(dataset.results, truth)
    ious = tube_ious(results, truth.instances, num_frames)
    expected = np.array([[_dense_tube_iou(d, g) for g in dense_truth] for d in dense_results])
    np.testing.assert_allclose(ious, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("counts_kind", ["compressed", "uncompressed"])
def test_run_lengths_of_compressed_rle_match_the_mask(rng, counts_kind):
    generator = np.random.default_rng(int(torch.randint(0, 2**31, (1,), generator=rng)))
    for height, width in ((1, 1), (7, 3), (40, 61)):
        mask = (generator.random((height, width)) < generator.random()).astype(np.uint8)
        flat = mask.flatten(order="F")
        changes = np.flatnonzero(np.diff(flat)) + 1
        runs = np.diff(np.concatenate(([0], changes, [flat.size])))
        if flat[0]:
            runs = np.concatenate(([0], runs))
        if counts_kind == "compressed":
            counts = mask_utils.encode(np.asfortranarray(mask))["counts"]
        else:
            counts = mask_utils.frPyObjects(
                {"size": [height, width], "counts": runs.tolist()}, height, width
            )["counts"]
        np.testing.assert_array_equal(compressed_run_lengths(counts), runs)


def _coco_scene(generator, num_images, height=48, width=48):
    """Random one-frame scenes: objects, noisy copies, swapped classes, false positives."""
    images, truths, predictions = [], [], []
    for image_id in range(1, num_images + 1):
        images.append({"id": image_id, "height": height, "width": width})
        for _ in range(generator.integers(0, 4)):
            top, left = generator.integers(0, height - 8), generator.integers(0, width - 8)
            mask = box(
                height,
                width,
                top,
                top + generator.integers(4, 20),
                left,
                left + generator.integers(4, 20),
            )
            category = int(generator.integers(1, 4))
            truths.append((image_id, category, mask))
            for _ in range(generator.integers(0, 3)):
                dy, dx = generator.integers(-3, 4, size=2)
                noisy = np.roll(mask, (dy, dx), axis=(0, 1))
                swapped = category if generator.random() < 0.8 else int(generator.integers(1, 4))
                predictions.append((image_id, swapped, noisy, float(generator.random())))
        for _ in range(generator.integers(0, 2)):
            top, left = generator.integers(0, height - 8, size=2)
            predictions.append(
                (
                    image_id,
                    int(generator.integers(1, 4)),
                    box(height, width, top, top + 6, left, left + 6),
                    float(generator.random()),
                )
            )
    return images, truths, predictions


@pytest.mark.parametrize("seed", [0, 1, 2, None])
def test_one_frame_videos_agree_with_image_cocoeval(seed, rng):
    if seed is None:
        seed = int(torch.randint(0, 2**31, (1,), generator=rng))
    generator = np.random.default_rng(seed)
    images, truths, predictions = _coco_scene(generator, num_images=8)
    categories = [{"id": c, "name": f"class{c}"} for c in (1, 2, 3)]

    coco_truth = COCO()
    coco_truth.dataset = {
        "images": images,
        "categories": categories,
        "annotations": [
            {
                "id": i + 1,
                "image_id": image,
                "category_id": category,
                "segmentation": rle(mask),
                "area": float(mask.sum()),
                "bbox": list(mask_utils.toBbox(mask_utils.encode(np.asfortranarray(mask)))),
                "iscrowd": 0,
            }
            for i, (image, category, mask) in enumerate(truths)
        ],
    }
    with contextlib.redirect_stdout(io.StringIO()):
        coco_truth.createIndex()
        coco_results = coco_truth.loadRes(
            [
                {
                    "image_id": image,
                    "category_id": category,
                    "segmentation": rle(mask),
                    "score": score,
                }
                for image, category, mask, score in predictions
            ]
            or np.zeros((0, 7))
        )
        coco_eval = COCOeval(coco_truth, coco_results, "segm")
        coco_eval.evaluate()
        coco_eval.accumulate()
        coco_eval.summarize()
    expected = coco_eval.stats

    video_truth = {
        "videos": [
            {"id": im["id"], "height": im["height"], "width": im["width"], "length": 1}
            for im in images
        ],
        "categories": categories,
        "annotations": [
            {
                "id": i + 1,
                "video_id": image,
                "category_id": category,
                "segmentations": [rle(mask)],
                "areas": [float(mask.sum())],
                "iscrowd": 0,
            }
            for i, (image, category, mask) in enumerate(truths)
        ],
    }
    video_results = [
        {"video_id": image, "category_id": category, "segmentations": [rle(mask)], "score": score}
        for image, category, mask, score in predictions
    ]
    result = evaluate_video_ap(video_truth, video_results)
    ours = [result.ap, result.ap50, result.ap75, result.ar1, result.ar10, result.ar100]
    np.testing.assert_allclose(
        ours, expected[[0, 1, 2, 6, 7, 8]], rtol=0, atol=1e-12, err_msg=f"seed {seed}"
    )
