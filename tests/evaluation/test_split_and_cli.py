"""``split`` (deterministic by-video split, atomic writes) and the ``eval`` / ``split``
subcommands through ``stemseg_fast.cli.main``."""

import json
import os

import pytest
from evaluation_builders import VideoDataset, box

from stemseg_fast.cli import main
from stemseg_fast.evaluation.split import held_out_video_ids, split_annotations, write_split

SQUARE = box(32, 32, 0, 10, 0, 10)
SHIFTED = box(32, 32, 0, 10, 2, 12)  # IoU 2/3 with SQUARE


def training_file(num_videos=20):
    dataset = VideoDataset()
    for video_id in range(1, num_videos + 1):
        dataset.video(video_id, 2)
        dataset.truth(video_id, 1 + video_id % 2, [SQUARE, None])
    truth = dataset.ground_truth()
    truth["info"] = {"description": "kept in both halves"}
    return truth


def test_split_is_deterministic_disjoint_and_complete():
    truth = training_file()
    train, val = split_annotations(truth, val_fraction=0.25, seed=3)
    again_train, again_val = split_annotations(truth, val_fraction=0.25, seed=3)
    assert (train, val) == (again_train, again_val)
    train_ids = [v["id"] for v in train["videos"]]
    val_ids = [v["id"] for v in val["videos"]]
    assert len(val_ids) == 5 and sorted(train_ids + val_ids) == list(range(1, 21))
    assert train_ids == sorted(train_ids)  # input order kept
    assert {a["video_id"] for a in val["annotations"]} == set(val_ids)
    assert {a["video_id"] for a in train["annotations"]} == set(train_ids)
    assert train["categories"] == val["categories"] == truth["categories"]
    assert val["info"] == truth["info"]
    other_train, _ = split_annotations(truth, val_fraction=0.25, seed=4)
    assert other_train["videos"] != train["videos"]  # the seed matters


def test_split_does_not_depend_on_the_order_of_the_videos():
    ids = list(range(100))
    held_out = held_out_video_ids(ids, val_fraction=0.1, seed=0)
    assert len(held_out) == 10
    assert held_out_video_ids(ids[::-1], val_fraction=0.1, seed=0) == held_out
    assert len(held_out_video_ids([1, 2], val_fraction=0.01)) == 1  # at least one each side


def test_split_generic_format():
    generic = {
        "meta": {"category_labels": {"1": "person"}},
        "sequences": [{"id": f"seq{i}", "segmentations": []} for i in range(10)],
    }
    train, val = split_annotations(generic, val_fraction=0.3, seed=0)
    assert len(val["sequences"]) == 3 and len(train["sequences"]) == 7
    assert train["meta"] == generic["meta"]


@pytest.mark.parametrize(
    "dataset, options, message",
    [
        ({"videos": [{"id": 1}], "annotations": []}, {}, "at least 2 videos"),
        ({"videos": [{"id": 1}, {"id": 1}]}, {}, "unique"),
        ({"videos": [{"id": 1}, {"id": 2}]}, {"val_fraction": 1.0}, r"val_fraction must be in"),
        (
            {"videos": [{"id": 1}, {"id": 2}], "annotations": [{"video_id": 3}]},
            {},
            r"video ids \['3'\] of 'annotations' are not in 'videos'",
        ),
        ({"images": []}, {}, "expected a YouTube-VIS/OVIS file"),
    ],
)
def test_split_errors(dataset, options, message):
    with pytest.raises(ValueError, match=message):
        split_annotations(dataset, **options)


def test_write_split_leaves_no_temporary_files(tmp_path):
    source = tmp_path / "train.json"
    source.write_text(json.dumps(training_file()))
    counts = write_split(
        str(source), str(tmp_path / "a.json"), str(tmp_path / "b.json"), val_fraction=0.1, seed=0
    )
    assert counts == (18, 2)
    assert sorted(os.listdir(tmp_path)) == ["a.json", "b.json", "train.json"]


def write_json(path, data):
    path.write_text(json.dumps(data))
    return str(path)


@pytest.fixture
def ytvis_files(tmp_path):
    dataset = VideoDataset()
    dataset.video(1, 2)
    dataset.truth(1, 1, [SQUARE, SQUARE])
    dataset.predict(1, 1, [SHIFTED, SHIFTED], 0.9)
    return (
        write_json(tmp_path / "gt.json", dataset.ground_truth()),
        write_json(tmp_path / "results.json", dataset.results),
    )


def test_cli_eval_ytvis_prints_the_table_and_writes_json(ytvis_files, tmp_path, capsys):
    truth, results = ytvis_files
    out = tmp_path / "out" / "ap.json"
    assert (
        main(["eval", "--metric", "ytvis", "--gt", truth, "--results", results, "--json", str(out)])
        == 0
    )
    printed = capsys.readouterr().out
    assert (
        "Average Precision  (AP) @[ IoU=0.50:0.95 | area=       all | maxDets=100 ] = 0.400"
        in printed
    )
    assert "person" in printed
    written = json.loads(out.read_text())
    assert written["summary"]["ap"] == pytest.approx(0.4)
    assert written["per_category_ap"] == {"person": pytest.approx(0.4), "dog": -1.0}


def test_cli_eval_reports_bad_input_in_one_line(ytvis_files, tmp_path, capsys):
    truth, _ = ytvis_files
    results = write_json(
        tmp_path / "bad.json",
        [{"video_id": 42, "category_id": 1, "score": 1.0, "segmentations": [None, None]}],
    )
    assert main(["eval", "--metric", "ytvis", "--gt", truth, "--results", results]) == 2
    error = capsys.readouterr().err.strip()
    assert error == (
        f"stemseg-fast eval: error: results file {results}: result #0 (video 42): "
        f"video id 42 is not in the ground truth"
    )
    assert main(["eval", "--metric", "ovis", "--gt", truth, "--results", results]) == 2
    assert "missing key 'occlusion'" in capsys.readouterr().err
    assert (
        main(["eval", "--metric", "ytvis", "--gt", truth, "--results", results, "--sequences", "a"])
        == 2
    )
    assert "--sequences applies to --metric kitti_mots and davis only" in capsys.readouterr().err


def test_cli_eval_mots_and_davis_need_their_folders(tmp_path, capsys):
    assert (
        main(
            ["eval", "--metric", "mots", "--gt", str(tmp_path / "nope"), "--results", str(tmp_path)]
        )
        == 2
    )
    assert "ground truth: not a folder" in capsys.readouterr().err
    assert (
        main(
            [
                "eval",
                "--metric",
                "davis",
                "--gt",
                str(tmp_path),
                "--results",
                str(tmp_path),
                "--sequences",
                "val",
            ]
        )
        == 2
    )
    assert "KITTI-MOTS validation split" in capsys.readouterr().err


def test_cli_eval_mots(tmp_path, capsys):
    pytest.importorskip("trackeval")
    from pycocotools import mask as mask_utils
    import numpy as np

    counts = mask_utils.encode(np.asfortranarray(SQUARE))["counts"].decode()
    for folder in ("gt", "res"):
        os.makedirs(tmp_path / folder)
        (tmp_path / folder / "0002.txt").write_text(f"0 1001 1 32 32 {counts}\n")
    out = tmp_path / "mots.json"
    assert (
        main(
            [
                "eval",
                "--metric",
                "mots",
                "--gt",
                str(tmp_path / "gt"),
                "--results",
                str(tmp_path / "res"),
                "--sequences",
                "0002",
                "--json",
                str(out),
            ]
        )
        == 0
    )
    assert "sMOTSA" in capsys.readouterr().out
    written = json.loads(out.read_text())
    assert written["summary"]["car"]["smotsa"] == pytest.approx(1.0)
    assert written["per_sequence"]["0002"]["car"]["hota"] == pytest.approx(1.0)


def test_cli_split(tmp_path, capsys):
    source = write_json(tmp_path / "train.json", training_file())
    train_out, val_out = tmp_path / "t.json", tmp_path / "v.json"
    assert (
        main(
            [
                "split",
                source,
                "--train-out",
                str(train_out),
                "--val-out",
                str(val_out),
                "--val-fraction",
                "0.2",
                "--seed",
                "1",
            ]
        )
        == 0
    )
    assert "16 training videos" in capsys.readouterr().out
    assert len(json.loads(val_out.read_text())["videos"]) == 4
    assert main(["split", str(tmp_path / "missing.json")]) == 2
    assert "annotations: no such file" in capsys.readouterr().err


def test_public_api_imports_without_trackeval():
    import subprocess
    import sys

    code = (
        "import sys; import stemseg_fast.evaluation as e; "
        "assert all(hasattr(e, name) for name in e.__all__); "
        "assert 'trackeval' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_eval_warns_when_the_results_classes_are_another_benchmarks(tmp_path, capsys):
    import numpy as np

    from stemseg_fast.io.rle import encode_mask, to_json

    mask = np.zeros((16, 16), np.uint8)
    mask[2:9, 3:12] = 1
    rle = to_json(encode_mask(mask))
    gt = tmp_path / "gt.json"
    gt.write_text(
        json.dumps(
            {
                "videos": [{"id": 1, "height": 16, "width": 16, "length": 1}],
                "categories": [{"id": 1, "name": "person"}, {"id": 2, "name": "dog"}],
                "annotations": [
                    {"id": 1, "video_id": 1, "category_id": 1, "iscrowd": 0, "segmentations": [rle]}
                ],
            }
        )
    )
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.json").write_text(
        json.dumps([{"video_id": 1, "category_id": 1, "score": 1.0, "segmentations": [rle]}])
    )
    argv = ["eval", "--metric", "ytvis", "--gt", str(gt), "--results", str(out / "results.json")]
    (out / "categories.json").write_text(
        json.dumps({"categories": [{"id": 1, "name": "Person"}, {"id": 2, "name": "dog"}]})
    )
    assert main(argv) == 0
    assert "warning" not in capsys.readouterr().err  # the same names, up to case
    (out / "categories.json").write_text(
        json.dumps({"categories": [{"id": 1, "name": "disc"}, {"id": 2, "name": "square"}]})
    )
    assert main(argv) == 0
    (warning,) = capsys.readouterr().err.strip().splitlines()
    assert warning.startswith("stemseg-fast eval: warning: 2 class ids of the results' ")
    assert "1 is 'disc' there but 'person' here" in warning
