"""On one-frame videos the YouTube-VIS evaluator must equal pycocotools' COCOeval (with the
fork's area ranges and the fork's IoU): compared on every precision/recall cell, on cases built
to hit what random scenes rarely do:

* more than 100 results in one (video, category), the lowest-scored of them true positives, so
  the per-(video, category) cut at 100 changes recall;
* ground-truth and result areas exactly on the fork's area-range bounds 128^2 and 256^2 (both
  bounds inclusive, so such an object is in two ranges);
* tied scores within a video and across videos, a true and a false positive sharing a score
  (the stable order of the sort decides the precision curve);
* crowd ground truth absorbing several results.

The fork (youtubevos/cocoapi ``YTVOSeval.computeIoU``) scores crowd ground truth with the plain
IoU, where image COCO uses intersection over the detection's area; :class:`ForkIoUCOCOeval`
takes COCOeval as it is and swaps only that, so matching, ignoring, cuts and accumulation all
remain pycocotools' own.
"""

import contextlib
import io

import numpy as np
import pytest
import torch
from evaluation_builders import box, rle
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from stemseg_fast.evaluation import evaluate_video_ap
from stemseg_fast.evaluation.video_ap import AREA_RANGES

SIZE = 300  # 256 x 256 objects fit
CATEGORIES = [{"id": c, "name": f"class{c}"} for c in (1, 2)]


class ForkIoUCOCOeval(COCOeval):
    """COCOeval whose mask IoU ignores ``iscrowd``, as the YouTube-VIS fork's does."""

    def computeIoU(self, imgId, catId):  # noqa: N802 (pycocotools' name)
        truths, results = self._gts[imgId, catId], self._dts[imgId, catId]
        if not truths and not results:
            return []
        order = np.argsort([-d["score"] for d in results], kind="mergesort")
        results = [results[i] for i in order][: self.params.maxDets[-1]]
        return mask_utils.iou(
            [d["segmentation"] for d in results],
            [g["segmentation"] for g in truths],
            [0] * len(truths),
        )


def square(top, left, side):
    return box(SIZE, SIZE, top, top + side, left, left + side)


def boundary_scene(generator, *, misses=105, false_positive_first=False):
    """[(image, category, mask, crowd)], [(image, category, mask, score)].

    Image 1: 20 small objects of class 1 found only by the 20 lowest of 125 results (105
    high-scoring misses first). Image 2: objects of exactly 128^2 and 256^2 pixels, results of
    those exact areas (one matching, one not), a crowd region taking two results. Images 3, 4:
    tied scores within and across the images, each tie a true and a false positive."""
    truths, results = [], []
    for n in range(20):
        top, left = 10 + 14 * (n // 5), 10 + 14 * (n % 5)
        truths.append((1, 1, square(top, left, 10), 0))
        results.append((1, 1, square(top + 1, left, 10), 0.01 + 0.001 * n))
    for n in range(misses):
        top, left = 150 + (n % 10) * 14, 10 + (n // 10) * 14
        results.append((1, 1, square(top, left % 280, 8), 0.5 + 0.004 * n))
    truths.append((2, 1, square(0, 0, 128), 0))  # area 128^2: small and medium
    truths.append((2, 2, square(20, 20, 256), 0))  # area 256^2: medium and large
    truths.append((2, 1, square(200, 200, 60), 1))  # crowd
    results.append((2, 1, square(2, 0, 128), 0.9))  # matches the 128^2 object
    results.append((2, 1, square(140, 140, 128), 0.8))  # unmatched, area exactly 128^2
    results.append((2, 2, square(20, 22, 256), 0.7))  # matches the 256^2 object
    results.append((2, 2, square(30, 30, 256), 0.95))  # duplicate, area exactly 256^2
    results.append((2, 1, square(205, 205, 40), 0.6))  # inside the crowd
    results.append((2, 1, square(210, 215, 40), 0.55))  # inside the crowd too
    for image in (3, 4):
        for n in range(3):
            mask = square(20 + 60 * n, 20, 40)
            truths.append((image, 1, mask, 0))
            tied = [
                (image, 1, np.roll(mask, 3, axis=1), 0.5),  # TP
                (image, 1, square(20 + 60 * n, 150, 40), 0.5),
            ]  # FP, same score
            results.extend(tied[::-1] if false_positive_first else tied)
        results.append((image, 2, square(200, 200, 30), 0.5))  # class 2 misses, tied too
    truths.append((4, 2, square(200, 150, 30), 0))
    # random jitter on top, drawn from the test's generator
    for image in (3, 4):
        top, left = generator.integers(0, SIZE - 40, size=2)
        results.append(
            (
                image,
                int(generator.integers(1, 3)),
                square(top, left, 30),
                float(np.round(generator.random(), 1)),
            )
        )
    return truths, results


def cocoeval_arrays(images, truths, results):
    coco_truth = COCO()
    coco_truth.dataset = {
        "images": [{"id": i, "height": SIZE, "width": SIZE} for i in images],
        "categories": CATEGORIES,
        "annotations": [
            {
                "id": n + 1,
                "image_id": image,
                "category_id": category,
                "segmentation": rle(mask),
                "area": float(mask.sum()),
                "bbox": list(mask_utils.toBbox(mask_utils.encode(np.asfortranarray(mask)))),
                "iscrowd": crowd,
            }
            for n, (image, category, mask, crowd) in enumerate(truths)
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
                for image, category, mask, score in results
            ]
        )
        evaluator = ForkIoUCOCOeval(coco_truth, coco_results, "segm")
        evaluator.params.areaRng = [
            list(AREA_RANGES[name]) for name in ("all", "small", "medium", "large")
        ]
        evaluator.params.areaRngLbl = ["all", "small", "medium", "large"]
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator.eval["precision"], evaluator.eval["recall"], evaluator.stats


def video_ap(images, truths, results):
    ground_truth = {
        "videos": [{"id": i, "height": SIZE, "width": SIZE, "length": 1} for i in images],
        "categories": CATEGORIES,
        "annotations": [
            {
                "id": n + 1,
                "video_id": image,
                "category_id": category,
                "segmentations": [rle(mask)],
                "areas": [float(mask.sum())],
                "iscrowd": crowd,
            }
            for n, (image, category, mask, crowd) in enumerate(truths)
        ],
    }
    return evaluate_video_ap(
        ground_truth,
        [
            {
                "video_id": image,
                "category_id": category,
                "segmentations": [rle(mask)],
                "score": score,
            }
            for image, category, mask, score in results
        ],
    )


def test_the_scene_hits_the_cases():
    truths, results = boundary_scene(np.random.default_rng(0))
    per_key = {}
    for image, category, _, _ in results:
        per_key[image, category] = per_key.get((image, category), 0) + 1
    assert max(per_key.values()) > 100
    areas = {int(mask.sum()) for _, _, mask, _ in truths + [(0, 0, m, 0) for *_, m, _ in results]}
    assert {128**2, 256**2} <= areas
    assert any(crowd for *_, crowd in truths)


@pytest.mark.parametrize("seed", [0, 1, None])
def test_boundary_cases_equal_cocoeval_cell_by_cell(seed, rng):
    if seed is None:
        seed = int(torch.randint(0, 2**31, (1,), generator=rng))
    truths, results = boundary_scene(np.random.default_rng(seed))
    images = (1, 2, 3, 4)
    precision, recall, stats = cocoeval_arrays(images, truths, results)
    result = video_ap(images, truths, results)
    np.testing.assert_allclose(
        result.precision, precision, rtol=0, atol=1e-12, err_msg=f"precision, seed {seed}"
    )
    np.testing.assert_allclose(
        result.recall, recall, rtol=0, atol=1e-12, err_msg=f"recall, seed {seed}"
    )
    ours = [
        result.ap,
        result.ap50,
        result.ap75,
        result.ap_small,
        result.ap_medium,
        result.ap_large,
        result.ar1,
        result.ar10,
        result.ar100,
        result.ar_small,
        result.ar_medium,
        result.ar_large,
    ]
    np.testing.assert_allclose(ours, stats, rtol=0, atol=1e-12, err_msg=f"seed {seed}")


def test_the_cut_at_100_and_the_tie_order_decide_the_numbers():
    """The comparison above can fail: COCOeval's numbers change with 100 instead of 125
    results in image 1 (no cut needed: its 20 objects are found) and with the tied false
    positives listed before the true positives."""
    images = (1, 2, 3, 4)
    precision, recall, _ = cocoeval_arrays(images, *boundary_scene(np.random.default_rng(0)))
    _, uncut_recall, _ = cocoeval_arrays(
        images, *boundary_scene(np.random.default_rng(0), misses=80)
    )
    assert not np.allclose(uncut_recall, recall)
    flipped, _, _ = cocoeval_arrays(
        images, *boundary_scene(np.random.default_rng(0), false_positive_first=True)
    )
    assert not np.allclose(flipped, precision)
