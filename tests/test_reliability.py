"""Hostile inputs at every boundary of the command line (inference, outputs, evaluation,
checkpoints, settings, signals, output folders); the training side is in
``tests/training/test_reliability_training.py``.

Every case builds its inputs in a fresh folder and runs one command. It must end with exit code
2 and exactly one line on stderr naming the problem, no traceback, nothing created, changed or
removed outside ``--out`` (input files and an unrelated "victim" folder are hashed before and
after), and no temporary left inside ``--out``: a refused run writes nothing at all.
"""

import dataclasses
import json
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from helpers import snapshot, untrained_tiny_config, write_frames

from stemseg_fast.cli import main
from stemseg_fast.model import build_stemseg, save_checkpoint
from stemseg_fast.model import checkpoints as checkpoint_module
from stemseg_fast.io.rle import encode_mask, to_json
from stemseg_fast.synthetic import synthetic_clip

pytestmark = pytest.mark.filterwarnings("ignore:video codec:RuntimeWarning")
FRAMES, HEIGHT, WIDTH = 5, 48, 64
TEMPORARY = re.compile(r"\.partial|\.old$")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Shared read-only inputs: a frame folder, a tiny checkpoint, and its state dict."""
    root = tmp_path_factory.mktemp("world")
    clip = synthetic_clip(num_frames=FRAMES, height=HEIGHT, width=WIDTH, seed=3)
    write_frames(root / "images" / "clip", clip.frames, extension="jpg")
    torch.manual_seed(0)
    config = untrained_tiny_config()
    model = build_stemseg(config)
    save_checkpoint(model, root / "tiny.pth")
    return {
        "root": root,
        "images": root / "images",
        "checkpoint": root / "tiny.pth",
        "config": config,
        "model": model,
    }


def _annotation(path, file_names, **video):
    entry = {"id": 1, "file_names": file_names, "height": HEIGHT, "width": WIDTH, **video}
    path.write_text(
        json.dumps({"videos": [entry], "categories": [{"id": 1, "name": "a"}], "annotations": []})
    )
    return path


def _victim(tmp):
    """A folder of someone's data: source frames and an unrelated file."""
    victim = tmp / "victim"
    write_frames(victim, [np.full((HEIGHT, WIDTH, 3), 9, np.uint8)] * FRAMES, extension="jpg")
    (victim / "notes.txt").write_text("keep me")
    return victim


def _frame_names(folder):
    return [f"{folder}/{index:05d}.jpg" for index in range(FRAMES)]


def _ground_truth(path, segmentation, *, categories=({"id": 1, "name": "a"},), iscrowd=0, **video):
    entry = {"id": 1, "height": 16, "width": 16, "length": 1, **video}
    path.write_text(
        json.dumps(
            {
                "videos": [entry],
                "categories": list(categories),
                "annotations": [
                    {
                        "id": 1,
                        "video_id": 1,
                        "category_id": 1,
                        "iscrowd": iscrowd,
                        "segmentations": [segmentation],
                    }
                ],
            }
        )
    )
    return path


def _square_rle(size=16):
    mask = np.zeros((size, size), np.uint8)
    mask[4:9, 4:9] = 1
    return to_json(encode_mask(mask))


def _results(path, entries):
    path.write_text(json.dumps(entries))
    return path


def _result(**changes):
    return {
        "video_id": 1,
        "category_id": 1,
        "score": 0.5,
        "segmentations": [_square_rle()],
        **changes,
    }


class TrainingLogger:
    """What official training files hold beside the weights: an object pickle must build."""


def _damaged_checkpoint(world, tmp, kind):
    path = tmp / f"{kind}.pth"
    good = world["checkpoint"].read_bytes()
    if kind == "truncated":
        path.write_bytes(good[: len(good) // 2])
    elif kind == "random":
        path.write_bytes(os.urandom(4096))
    elif kind == "list":
        torch.save([torch.ones(2)], path)
    elif kind == "object":
        torch.save({"model": {}, "logger": TrainingLogger()}, path)
    elif kind == "nan":
        state = {key: value.clone() for key, value in world["model"].state_dict().items()}
        next(value for value in state.values() if value.is_floating_point()).fill_(float("nan"))
        torch.save(
            {
                "format": checkpoint_module.CHECKPOINT_FORMAT,
                "config": world["config"].to_dict(),
                "state_dict": state,
            },
            path,
        )
    elif kind == "bad_config":
        config = world["config"].to_dict()
        config["inference"]["max_dim"] = -5
        torch.save(
            {
                "format": checkpoint_module.CHECKPOINT_FORMAT,
                "config": config,
                "state_dict": world["model"].state_dict(),
            },
            path,
        )
    elif kind == "official_no_preset":
        torch.save({"model": world["model"].state_dict()}, path)
    return path


def _infer(world, tmp, *inputs, formats="ytvis", checkpoint=None, extra=()):
    return [
        "infer",
        *map(str, inputs),
        "--checkpoint",
        str(checkpoint or world["checkpoint"]),
        "--out",
        str(tmp / "out"),
        "--format",
        formats,
        "--no-progress",
        *extra,
    ]


def _absolute_names(world, tmp, formats):
    victim = _victim(tmp)
    annotation = _annotation(tmp / "inputs.json", _frame_names(victim))
    return _infer(world, tmp, annotation, formats=formats, extra=["--image-root", str(tmp)])


def _traversal_names(world, tmp, formats):
    _victim(tmp)
    (tmp / "images").mkdir()
    annotation = _annotation(tmp / "inputs.json", _frame_names("../victim"))
    return _infer(
        world, tmp, annotation, formats=formats, extra=["--image-root", str(tmp / "images")]
    )


def _nested_name(world, tmp, formats):
    folder = tmp / "images" / "a" / "clip"
    write_frames(folder, [np.zeros((HEIGHT, WIDTH, 3), np.uint8)] * FRAMES, extension="jpg")
    annotation = _annotation(tmp / "inputs.json", _frame_names("a/clip"))
    return _infer(
        world, tmp, annotation, formats=formats, extra=["--image-root", str(tmp / "images")]
    )


def _foreign_davis_folder(world, tmp):
    victim = tmp / "out" / "davis" / "clip"
    write_frames(victim, [np.zeros((HEIGHT, WIDTH, 3), np.uint8)], extension="jpg")
    return _infer(world, tmp, world["images"] / "clip", formats="davis")


def _render(world, tmp, results, *, annotations=None, videos=None):
    argv = [
        "render",
        str(results),
        "--videos",
        str(videos or world["images"]),
        "--out",
        str(tmp / "out"),
    ]
    return argv + (["--annotations", str(annotations)] if annotations else [])


def _render_names(world, tmp, file_names):
    annotation = _annotation(tmp / "inputs.json", file_names)
    results = _results(tmp / "results.json", [_result(segmentations=[None] * FRAMES)])
    return _render(world, tmp, results, annotations=annotation, videos=tmp / "images")


def _render_clip(world, tmp, **changes):
    annotation = _annotation(tmp / "inputs.json", _frame_names("clip"))
    rle = to_json(encode_mask(np.ones((HEIGHT, WIDTH), np.uint8)))
    entry = dict(_result(segmentations=[rle] * FRAMES), **changes)
    results = _results(tmp / "results.json", [entry])
    return _render(world, tmp, results, annotations=annotation)


def _eval(gt, results, metric="ytvis"):
    return ["eval", "--metric", metric, "--gt", str(gt), "--results", str(results)]


def _eval_gt(tmp, segmentation=None, **options):
    gt = _ground_truth(tmp / "gt.json", segmentation or _square_rle(), **options)
    return _eval(gt, _results(tmp / "results.json", [_result()]))


def _eval_results(tmp, entries=None, raw=None):
    gt = _ground_truth(tmp / "gt.json", _square_rle())
    results = tmp / "results.json"
    if raw is not None:
        results.write_bytes(raw)
    else:
        _results(results, entries)
    return _eval(gt, results)


def _set(world, tmp, *assignments):
    extra = [item for assignment in assignments for item in ("--set", assignment)]
    return _infer(world, tmp, world["images"] / "clip", extra=extra)


def _linked_output_folder(world, tmp, folder, formats):
    """A folder inside --out that is a link to the victim's folder."""
    victim = _victim(tmp)
    (tmp / "out").mkdir()
    (tmp / "out" / folder).symlink_to(victim)
    return _infer(world, tmp, world["images"] / "clip", formats=formats)


def _kitti_collision(world, tmp):
    for name in ("1", "01"):
        write_frames(
            tmp / "videos" / name, [np.zeros((HEIGHT, WIDTH, 3), np.uint8)] * 2, extension="jpg"
        )
    kitti = dataclasses.replace(world["config"], num_classes=3, category_names=None)
    save_checkpoint(build_stemseg(kitti), tmp / "kitti.pth")
    return _infer(world, tmp, tmp / "videos", formats="kitti", checkpoint=tmp / "kitti.pth")


def _render_recorded(world, tmp, videos, entries):
    """Results beside a videos.json as infer writes them."""
    (tmp / "res").mkdir()
    (tmp / "res" / "videos.json").write_text(json.dumps(videos))
    results = _results(tmp / "res" / "results.json", entries)
    return _render(world, tmp, results, videos=world["images"])


def _render_one_good_one_bad(world, tmp):
    for name in ("clip", "other"):
        write_frames(
            tmp / "videos" / name,
            [np.zeros((HEIGHT, WIDTH, 3), np.uint8)] * FRAMES,
            extension="jpg",
        )
    full = to_json(encode_mask(np.ones((HEIGHT, WIDTH), np.uint8)))
    short = {"size": [HEIGHT, WIDTH], "counts": [10**6]}
    argv = _render_recorded(
        world,
        tmp,
        [{"id": 1, "name": "clip"}, {"id": 2, "name": "other"}],
        [
            _result(segmentations=[full] * FRAMES),
            _result(video_id=2, segmentations=[short] * FRAMES),
        ],
    )
    return argv[:3] + [str(tmp / "videos")] + argv[4:]


FORMATS = ("ytvis", "davis", "kitti", "overlay")
CASES = {
    # Names and paths taken from input files.
    **{
        f"absolute file_names, {f}": (
            lambda w, t, f=f: _absolute_names(w, t, f),
            r"must be a path relative to the image root",
        )
        for f in FORMATS
    },
    **{
        f"../ in file_names, {f}": (lambda w, t, f=f: _traversal_names(w, t, f), r"without '\.\.'")
        for f in FORMATS
    },
    "nested video folder name": (
        lambda w, t: _nested_name(w, t, "davis"),
        r"'a/clip' cannot name an output",
    ),
    "an existing folder that is not ours": (
        _foreign_davis_folder,
        r"already exists and was not written by stemseg-fast",
    ),
    "video id is a string": (
        lambda w, t: _infer(
            w,
            t,
            _annotation(t / "a.json", _frame_names("clip"), id="x"),
            extra=["--image-root", str(w["images"])],
        ),
        r"'id' must be an integer",
    ),
    "file_names is not a list": (
        lambda w, t: _infer(w, t, _annotation(t / "a.json", "clip/00000.jpg")),
        r"non-empty 'file_names' list",
    ),
    "annotation file not UTF-8": (
        lambda w, t: (t / "a.json").write_bytes(b"\xff\xfe{") and _infer(w, t, t / "a.json"),
        r"a\.json is not UTF-8 text",
    ),
    "annotation file not JSON": (
        lambda w, t: (t / "a.json").write_text("{videos") and _infer(w, t, t / "a.json"),
        r"a\.json is not valid JSON",
    ),
    "missing video": (lambda w, t: _infer(w, t, t / "none.mp4"), r"none\.mp4 does not exist"),
    "video of random bytes": (
        lambda w, t: (t / "v.mp4").write_bytes(os.urandom(2048)) and _infer(w, t, t / "v.mp4"),
        r"v\.mp4: OpenCV cannot",
    ),
    "--out is a file": (
        lambda w, t: (t / "out").write_text("x") and _infer(w, t, w["images"] / "clip"),
        r"--out .* exists and is not a folder",
    ),
    # Checkpoints.
    **{
        f"checkpoint {kind}": (
            lambda w, t, kind=kind: _infer(
                w, t, w["images"] / "clip", checkpoint=_damaged_checkpoint(w, t, kind)
            ),
            message,
        )
        for kind, message in (
            ("truncated", r"truncated\.pth is damaged or truncated"),
            ("random", r"random\.pth is not a PyTorch checkpoint"),
            ("list", r"list\.pth holds a list, expected a state dict"),
            ("object", r"object\.pth holds Python objects other than tensors"),
            ("nan", r"holds NaN or infinite values"),
            ("bad_config", r"its config is not valid: inference setting max_dim"),
            ("official_no_preset", r"official STEm-Seg file, which records no preset"),
        )
    },
    "checkpoint name unknown": (
        lambda w, t: _infer(w, t, w["images"] / "clip", checkpoint="ytvis-large"),
        r"is not a named official checkpoint",
    ),
    # Settings.
    "--set max_dim=-5": (
        lambda w, t: _set(w, t, "max_dim=-5"),
        r"inference setting max_dim must be an integer",
    ),
    "--set min_seediness=abc": (
        lambda w, t: _set(w, t, "min_seediness=abc"),
        r"inference setting min_seediness must be a number",
    ),
    "--set stitch_iou_threshold=nan": (
        lambda w, t: _set(w, t, "stitch_iou_threshold=.nan"),
        r"stitch_iou_threshold must be a number in \[0, 1\]",
    ),
    "--set clip_overlap past the clip": (
        lambda w, t: _set(w, t, "clip_overlap=9"),
        r"clip_overlap must be an integer in \[0, 3\]",
    ),
    "--set unknown name": (
        lambda w, t: _set(w, t, "speed=11"),
        r"unknown inference settings \['speed'\]",
    ),
    "--set without a value": (lambda w, t: _set(w, t, "max_dim"), r"--set expects name=value"),
    "--set unreadable value": (
        lambda w, t: _set(w, t, "max_dim=[1"),
        r"--set max_dim: '\[1' is not a YAML value",
    ),
    "--confidence-threshold out of range": (
        lambda w, t: _infer(w, t, w["images"] / "clip", extra=["--confidence-threshold", "2"]),
        r"argument --confidence-threshold: must be in \[0, 1\], got 2",
    ),
    "--format unknown": (
        lambda w, t: _infer(w, t, w["images"] / "clip", formats="coco"),
        r"--format must be among",
    ),
    # Render: names from its inputs, numbers and masks from a results file.
    "render absolute file_names": (
        lambda w, t: _render_names(w, t, _frame_names(_victim(t))),
        r"must be a path relative to the image root",
    ),
    "render ../ in file_names": (
        lambda w, t: (
            (_victim(t), (t / "images").mkdir()) and _render_names(w, t, _frame_names("../victim"))
        ),
        r"without '\.\.'",
    ),
    "render video_id not an integer": (
        lambda w, t: _render_clip(w, t, video_id="1"),
        r"'video_id' must be an integer",
    ),
    "render NaN score": (
        lambda w, t: _render_clip(w, t, score=float("nan")),
        r"'score' must be a finite number",
    ),
    "render RLE of another size": (
        lambda w, t: _render_clip(w, t, segmentations=[_square_rle()] * FRAMES),
        r"RLE size \[16, 16\] does not match the frame size",
    ),
    "render RLE runs short": (
        lambda w, t: _render_clip(
            w, t, segmentations=[{"size": [HEIGHT, WIDTH], "counts": "0:0"}] * FRAMES
        ),
        r"malformed RLE: run lengths add up to",
    ),
    # Evaluation: ground truth and results.
    "ground truth duplicate category ids": (
        lambda w, t: _eval_gt(t, categories=({"id": 1, "name": "a"}, {"id": 1, "name": "b"})),
        r"duplicate category id",
    ),
    "ground truth negative height": (
        lambda w, t: _eval_gt(t, height=-16),
        r"'height' must be in \[1, 100000\], got -16",
    ),
    "ground truth infinite polygon": (
        lambda w, t: _eval_gt(t, [[0, 0, 8, float("inf"), 8, 8]]),
        r"polygon coordinates must be finite",
    ),
    "ground truth far-off polygon": (
        lambda w, t: _eval_gt(t, [[0, 0, 8, 1e9, 8, 8]]),
        r"polygon coordinates must be finite and within",
    ),
    "results not UTF-8": (
        lambda w, t: _eval_results(t, raw=b"[\xff]"),
        r"results\.json is not UTF-8 text",
    ),
    "results NaN score": (
        lambda w, t: _eval_results(t, [_result(score=float("nan"))]),
        r"'score' must be a finite number",
    ),
    # Found by a red-team review: links, collisions, inputs as outputs, unbounded numbers.
    **{
        f"a link inside --out ({folder})": (
            lambda w, t, folder=folder, formats=formats: _linked_output_folder(
                w, t, folder, formats
            ),
            r"is a symbolic link: outputs are never written through links",
        )
        for folder, formats in (("davis", "davis"), ("overlay", "overlay"), ("per_video", "ytvis"))
    },
    "two videos writing one KITTI file": (
        _kitti_collision,
        r"videos '01' and '1' would both write .*0001\.txt",
    ),
    "annotation file without videos": (
        lambda w, t: (t / "a.json").write_text('{"videos": []}') and _infer(w, t, t / "a.json"),
        r"the inputs hold no video",
    ),
    "video id beyond 32 bits": (
        lambda w, t: _infer(
            w,
            t,
            _annotation(t / "a.json", _frame_names("clip"), id=10**30),
            extra=["--image-root", str(w["images"])],
        ),
        r"'id' must be an integer in \[0, 2147483647\]",
    ),
    "--ids-from naming a video twice": (
        lambda w, t: (
            (t / "ids.json").write_text(
                json.dumps(
                    {
                        "videos": [
                            {"id": 1, "file_names": ["clip/00000.jpg"]},
                            {"id": 2, "file_names": ["clip/00001.jpg"]},
                        ]
                    }
                )
            )
            and _infer(w, t, w["images"] / "clip", extra=["--ids-from", str(t / "ids.json")])
        ),
        r"two videos are named 'clip' \(ids 1 and 2\)",
    ),
    "JSON nested too deeply": (
        lambda w, t: (
            (t / "a.json").write_text("[" * 100_000 + "]" * 100_000) and _infer(w, t, t / "a.json")
        ),
        r"a\.json nests its JSON too deeply",
    ),
    "an integer of 5000 digits": (
        lambda w, t: (
            (t / "a.json").write_text('{"videos": [{"id": 1' + "0" * 5000 + "}]}")
            and _infer(w, t, t / "a.json")
        ),
        r"a\.json is not valid JSON",
    ),
    "--threads far too many": (
        lambda w, t: _infer(w, t, w["images"] / "clip", extra=["--threads", "100000000"]),
        r"argument --threads: must be in \[1, 1024\]",
    ),
    "--fps too small to encode": (
        lambda w, t: _infer(w, t, w["images"] / "clip", extra=["--fps", "1e-9"]),
        r"argument --fps: must be in \[0.1, 1000\]",
    ),
    "split writing over its input": (
        lambda w, t: [
            "split",
            str(_annotation(t / "a.json", _frame_names("clip"))),
            "--train-out",
            str(t / "a.json"),
            "--val-out",
            str(t / "out" / "v.json"),
        ],
        r"--train-out .*a\.json is one of the inputs",
    ),
    "eval --json writing over the ground truth": (
        lambda w, t: _eval_gt(t) + ["--json", str(t / "gt.json")],
        r"--json .*gt\.json is one of the inputs",
    ),
    "render: two videos of one name": (
        lambda w, t: _render_recorded(
            w,
            t,
            [{"id": 1, "name": "clip"}, {"id": 2, "name": "clip"}],
            [_result(segmentations=[None] * FRAMES)],
        ),
        r"a second video named 'clip'",
    ),
    "render: a bad last video writes no first one": (
        _render_one_good_one_bad,
        r"video_id 2 frame 0: malformed RLE",
    ),
    "ground truth iscrowd 'yes'": (
        lambda w, t: _eval_gt(t, iscrowd="yes"),
        r"'iscrowd' must be 0 or 1, got 'yes'",
    ),
    "results RLE with bad characters": (
        lambda w, t: _eval_results(
            t, [_result(segmentations=[{"size": [16, 16], "counts": "\x01\x02"}])]
        ),
        r"characters outside the RLE alphabet",
    ),
}


def _temporaries(folder):
    found = []
    for _, subfolders, files in os.walk(folder):
        found += [name for name in subfolders + files if TEMPORARY.search(name)]
    return found


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_one_line_exit_2_and_touches_nothing_outside_out(
    case, world, tmp_path, capsys
):
    build, message = CASES[case]
    argv = build(world, tmp_path)
    before = snapshot(tmp_path, world["root"])
    code = main(argv)
    stderr = capsys.readouterr().err
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert code == 2, stderr
    assert len(lines) == 1 and lines[0].startswith(f"stemseg-fast {argv[0]}: error: "), stderr
    assert re.search(message, lines[0]), lines[0]
    assert snapshot(tmp_path, world["root"]) == before  # a refused run writes nothing at all
    assert not _temporaries(tmp_path)


def test_there_are_at_least_forty_cases():
    assert len(CASES) >= 40


# Cases that would hang, or need a real process (signals): run the command in a child.


def _child(code, *, timeout=120):
    """Run python ``code`` (which calls the CLI) in a child process; (exit code, stderr)."""
    script = textwrap.dedent(code)
    process = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=os.path.dirname(__file__),
        env=dict(os.environ, PYTHONPATH=os.path.dirname(__file__)),
    )
    return process.returncode, process.stderr


@pytest.mark.parametrize("where", ["ground truth", "results"])
def test_a_nan_polygon_is_refused_within_a_time_limit(where, tmp_path):
    nan_polygon = [[0, 0, 8, float("nan"), 8, 8]]
    if where == "ground truth":
        gt, results = _ground_truth(tmp_path / "gt.json", nan_polygon), [_result()]
    else:
        gt, results = (
            _ground_truth(tmp_path / "gt.json", _square_rle()),
            [_result(segmentations=[nan_polygon])],
        )
    results = _results(tmp_path / "results.json", results)
    # A regression would loop inside pycocotools allocating ~25 MB/s: the timeout fails it.
    code, stderr = _child(
        f"""
        import sys
        from stemseg_fast.cli import main
        sys.exit(main({_eval(gt, results)!r}))
        """,
        timeout=120,
    )
    assert code == 2, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "polygon coordinates must be finite" in lines[0], stderr


SIGNAL_DURING_DAVIS_WRITE = """
    import os, signal, sys
    from stemseg_fast.tracks import VideoTracks
    from stemseg_fast.cli import main

    # A shell starts background jobs with SIGINT ignored, and Python keeps that: restore the
    # default, as an interactive terminal would have it.
    signal.signal(signal.SIGINT, signal.default_int_handler)

    label_map = VideoTracks.label_map

    def label_map_then_signal(self, frame):
        if frame == 2:  # half-way through writing the PNG folder
            os.kill(os.getpid(), signal.{signal_name})
        return label_map(self, frame)

    VideoTracks.label_map = label_map_then_signal
    sys.exit(main({argv!r}))
"""


@pytest.mark.parametrize("signal_name, code", [("SIGTERM", 143), ("SIGINT", 130)])
def test_a_signal_while_writing_outputs_leaves_no_partial_folder(
    signal_name, code, world, tmp_path
):
    out = tmp_path / "out"
    argv = _infer(world, tmp_path, world["images"] / "clip", formats="davis")
    returned, stderr = _child(SIGNAL_DURING_DAVIS_WRITE.format(signal_name=signal_name, argv=argv))
    assert returned == code, stderr
    assert "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1] == (
        f"stemseg-fast infer: {'terminated' if signal_name == 'SIGTERM' else 'interrupted'}; "
        f"no partial output was left"
    )
    assert not _temporaries(out)
    assert not (out / "davis" / "clip").exists()


def test_an_interrupted_runs_temporaries_are_removed_and_nothing_else(world, tmp_path):
    out = tmp_path / "out"
    debris = [
        out / "davis" / ".clip.abcd1234.partial",
        out / ".results.k9x_2abc.partial.json",
        out / "overlay" / ".clip.zzzzzzzz.partial.mp4",
    ]
    for path in debris:
        path.parent.mkdir(parents=True, exist_ok=True)
        (path.mkdir() if path.suffix == ".partial" else path.write_text("half"))
    kept = [out / "davis" / ".hidden", out / "notes.partial.txt", out / "mine.txt"]
    for path in kept:
        path.write_text("the user's")
    argv = _infer(world, tmp_path, world["images"] / "clip", formats="ytvis,davis")
    assert main(argv) == 0
    assert not any(path.exists() for path in debris)
    assert all(path.read_text() == "the user's" for path in kept)
    assert sorted(os.listdir(out / "davis" / "clip")) == [f"{t:05d}.png" for t in range(FRAMES)]


def test_a_second_run_replaces_its_own_davis_folder(world, tmp_path):
    argv = _infer(world, tmp_path, world["images"] / "clip", formats="davis")
    assert main(argv) == 0
    first = snapshot(tmp_path / "out")
    assert main(argv) == 0
    assert snapshot(tmp_path / "out").keys() == first.keys()


def test_named_downloads_are_checked_before_they_are_cached(world, tmp_path, monkeypatch):
    good = tmp_path / "served" / "davis.pth"
    good.parent.mkdir()
    torch.save({"model": {"x": torch.ones(3)}}, good)
    cache = tmp_path / "cache"
    for name, payload in (("truncated", good.read_bytes()[:200]), ("random", os.urandom(1000))):
        served = tmp_path / "served" / f"{name}.pth"
        served.write_bytes(payload)
        urls = {"davis": served.as_uri()}
        with pytest.raises(ValueError, match=r"(damaged or truncated|not a PyTorch checkpoint)"):
            checkpoint_module.download_official_checkpoint(
                "davis", cache_dir=cache, progress=False, urls=urls
            )
        assert os.listdir(cache) == []  # nothing cached, no temporary left
    urls = {"davis": good.as_uri()}
    path = checkpoint_module.download_official_checkpoint(
        "davis", cache_dir=cache, progress=False, urls=urls
    )
    assert sorted(os.listdir(cache)) == ["davis.pth", "davis.pth.sha256"]
    with open(path, "r+b") as handle:  # the cached file changes after it was checked
        handle.seek(100)
        handle.write(b"\x00")
    with pytest.raises(ValueError, match="does not match the SHA-256 recorded"):
        checkpoint_module.download_official_checkpoint(
            "davis", cache_dir=cache, progress=False, urls=urls
        )


def test_a_failed_download_says_where_to_put_the_file(world, tmp_path):
    urls = {"davis": (tmp_path / "nowhere.pth").as_uri()}
    with pytest.raises(
        ValueError,
        match=r"cannot download official checkpoint 'davis' .* "
        r"place it at .*davis\.pth",
    ):
        checkpoint_module.download_official_checkpoint(
            "davis", cache_dir=tmp_path / "cache", progress=False, urls=urls
        )
    assert os.listdir(tmp_path / "cache") == []


def test_a_named_download_that_does_not_fit_the_model_is_not_cached(world, tmp_path, monkeypatch):
    served = tmp_path / "kitti.pth"
    torch.save({"model": {"x": torch.ones(3)}}, served)  # a readable file of the wrong model
    monkeypatch.setitem(checkpoint_module.OFFICIAL_CHECKPOINT_URLS, "kitti_mots", served.as_uri())
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "hub"))
    with pytest.raises(KeyError, match="does not fit the model"):
        checkpoint_module.stemseg_from_official("kitti_mots", progress=False)
    assert os.listdir(tmp_path / "hub" / "checkpoints" / "stemseg") == []


def test_atomic_output_renames_where_it_made_its_temporary(tmp_path):
    from stemseg_fast.io.files import atomic_output

    (tmp_path / "a" / "b").mkdir(parents=True)
    target = os.path.join(str(tmp_path / "a" / "b"), "..", "result.txt")
    with atomic_output(target) as temporary:
        assert os.path.dirname(temporary) == str(tmp_path / "a")
        with open(temporary, "w") as handle:
            handle.write("done")
    assert (tmp_path / "a" / "result.txt").read_text() == "done"
    assert sorted(os.listdir(tmp_path / "a")) == ["b", "result.txt"]


@pytest.mark.parametrize("name", ["video.mp4", "annotations.json", "frames/00000.jpg"])
def test_a_fifo_input_is_refused_instead_of_blocking(name, world, tmp_path):
    """Opening a FIFO blocks until a writer comes, where no signal handler can run."""
    fifo = tmp_path / name
    fifo.parent.mkdir(exist_ok=True)
    os.mkfifo(fifo)
    target = fifo.parent if name.startswith("frames/") else fifo
    argv = _infer(world, tmp_path, target)
    code, stderr = _child(
        f"""
        import sys
        from stemseg_fast.cli import main
        sys.exit(main({argv!r}))
        """,
        timeout=120,
    )
    assert code == 2, stderr
    (line,) = stderr.strip().splitlines()
    assert line.startswith("stemseg-fast infer: error: ") and "is not a regular file" in line
