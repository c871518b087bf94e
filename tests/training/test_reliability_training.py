"""The train command at its boundaries, run as a user runs it: a subprocess of the real command.

Bad input (settings, config files, data paths, initial weights, run folders it cannot resume)
ends in exit code 2 with exactly one error line naming the problem, no traceback, and nothing
created, changed or deleted anywhere: not in the run folder, not beside it, not in the inputs.
Interruptions (kill -9 inside a checkpoint write, SIGTERM, a damaged newest checkpoint) leave a
run folder that the same command resumes to final weights bitwise equal to an uninterrupted run.

Interruptions come from test-only code that a child process runs before the command (see
:data:`CHILD`): a ``torch.save`` that writes half a checkpoint and SIGKILLs its own process, or a
``Trainer.fit`` that signals its own process after a given step. The library has no test hook.
"""

import dataclasses
import multiprocessing
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import typing

import pytest
import torch
import yaml
from helpers import snapshot
from test_train_command import write_config

from stemseg_fast.model.checkpoints import save_checkpoint as save_model_checkpoint
from stemseg_fast.model.presets import PRESETS
from stemseg_fast.model.stemseg import build_stemseg
from stemseg_fast.training.trainer import Trainer

MAX_STEPS, CHECKPOINT_EVERY = 6, 2
ERROR_PREFIX = "stemseg-fast train: error: "
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ stemseg_fast\.")
PARTIAL = re.compile(r"\.partial")

# Runs the train command after test-only code; argv[1] is that code, the rest the arguments.
CHILD = textwrap.dedent("""
    import os, signal, sys
    exec(sys.argv[1])
    from stemseg_fast.cli import main
    sys.exit(main(["train", *sys.argv[2:]]))
""")

# Writes half of the training checkpoint of step {step}, then SIGKILLs its own process: what
# kill -9 (or a lost machine) does in the middle of a checkpoint write.
KILL_INSIDE_CHECKPOINT_WRITE = textwrap.dedent("""
    import io, torch
    _real_save = torch.save
    def _save_half_then_die(obj, f, *args, **kwargs):
        if isinstance(obj, dict) and obj.get("step") == {step} and "optimizer" in obj:
            buffer = io.BytesIO()
            _real_save(obj, buffer, *args, **kwargs)
            with open(f, "wb") as handle:
                handle.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
                handle.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        return _real_save(obj, f, *args, **kwargs)
    torch.save = _save_half_then_die
""")

# Sends {signal} to its own process right after optimiser step {step}.
SIGNAL_AFTER_STEP = textwrap.dedent("""
    from stemseg_fast.training.trainer import Trainer
    _real_fit = Trainer.fit
    def _fit_then_signal(self, after_step=None):
        def after(step, terms):
            if step == {step}:
                os.kill(os.getpid(), signal.{signal})
        return _real_fit(self, after_step=after)
    Trainer.fit = _fit_then_signal
""")


def run_train(args, cwd, *, prelude=None, module=None):
    """Run ``stemseg-fast train ARGS`` in a new process with ``cwd`` as working folder.

    With ``prelude`` (test-only code run first) or ``module`` (``stemseg_fast.cli``: the console
    script; ``stemseg_fast``: what ``torchrun -m stemseg_fast train`` starts) the process is a fresh
    interpreter. Otherwise it is forked from a server that has imported the
    library once (multiprocessing's forkserver) and calls the console script's function
    ``stemseg_fast.cli.main``: the same command without the ~3 s of imports per case.
    """
    if prelude is None and module is None:
        return _run_forked(args, cwd)
    if prelude is not None:
        command = [sys.executable, "-c", CHILD, prelude, *args]
    else:
        command = [sys.executable, "-m", module, "train", *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=300)


_FORKSERVER = multiprocessing.get_context("forkserver")
_FORKSERVER.set_forkserver_preload(["stemseg_fast.cli", "stemseg_fast.training.train"])


def _train_in_forked_child(args, cwd, stdout_path, stderr_path):
    from stemseg_fast.cli import main

    os.chdir(cwd)
    for fd, path in ((1, stdout_path), (2, stderr_path)):
        with open(path, "w") as handle:
            os.dup2(handle.fileno(), fd)
    sys.exit(main(["train", *args]))


def _run_forked(args, cwd):
    with tempfile.TemporaryDirectory() as capture:  # outside cwd: the case checks every file
        stdout_path, stderr_path = (os.path.join(capture, name) for name in ("out", "err"))
        child = _FORKSERVER.Process(
            target=_train_in_forked_child, args=(list(args), str(cwd), stdout_path, stderr_path)
        )
        child.start()
        child.join(300)
        if child.is_alive():
            child.kill()
            raise AssertionError(f"stemseg-fast train {args} did not finish in 300 s")
        with open(stdout_path) as out, open(stderr_path) as err:
            return subprocess.CompletedProcess(args, child.exitcode, out.read(), err.read())


def partial_files(*roots):
    return sorted(path for path in snapshot(*roots) if PARTIAL.search(os.path.basename(path)))


def final_weights(run_dir):
    payload = torch.load(os.path.join(run_dir, "model_final.pth"), weights_only=True)
    return payload["state_dict"]


def assert_bitwise_equal(weights, reference):
    assert weights.keys() == reference.keys()
    for name, value in reference.items():
        assert torch.equal(weights[name], value), name


def assert_one_error_line(result, expected):
    """Exit code 2, one error line holding ``expected``, no traceback; any other line on stderr
    is a log line of the library (e.g. a warning about a skipped checkpoint)."""
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith(ERROR_PREFIX)]
    assert len(errors) == 1, result.stderr
    assert expected in errors[0], errors[0]
    assert all(line in errors or LOG_LINE.match(line) for line in lines), result.stderr
    assert result.stdout == ""


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """Shared, read-only inputs: the synthetic data and config, the final weights of an
    uninterrupted run, and a run folder killed after step 5 (checkpoints of steps 2 and 4)."""
    root = tmp_path_factory.mktemp("base")
    config = write_config(
        root, max_steps=MAX_STEPS, checkpoint_every=CHECKPOINT_EVERY, keep_checkpoints=2
    )
    straight = run_train(
        ["--config", str(config), "--run-dir", str(root / "straight")],
        root,
        module="stemseg_fast.cli",
    )
    assert straight.returncode == 0, straight.stderr
    killed = run_train(
        ["--config", str(config), "--run-dir", str(root / "killed")],
        root,
        prelude=SIGNAL_AFTER_STEP.format(step=5, signal="SIGKILL"),
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert sorted(os.listdir(root / "killed")) == [
        "checkpoint_00000002.pt",
        "checkpoint_00000004.pt",
        "tensorboard",
    ]
    return {
        "root": root,
        "config": config,
        "reference": final_weights(root / "straight"),
        "killed_run": root / "killed",
    }


def config_values(base, tmp_path):
    """The base config with its run folder moved into ``tmp_path``."""
    values = yaml.safe_load(base["config"].read_text())
    values["run_dir"] = str(tmp_path / "run")
    return values


def write_values(tmp_path, values, name="config.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(values))
    return path


# --- bad input: (id, setup(tmp_path, values) -> extra arguments, text the error line holds) --


def _set(*assignments):
    def setup(tmp_path, values):
        return [argument for assignment in assignments for argument in ("--set", assignment)]

    return setup


def _edit(change):
    def setup(tmp_path, values):
        change(values)
        return []

    return setup


def _raw_config(text_or_bytes):
    def setup(tmp_path, values):
        path = tmp_path / "raw.yaml"
        if isinstance(text_or_bytes, bytes):
            path.write_bytes(text_or_bytes)
        else:
            path.write_text(text_or_bytes)
        return ["--config", str(path)]

    return setup


def _init_weights(write):
    """``init_weights`` is a file that ``write(path)`` makes."""

    def setup(tmp_path, values):
        path = tmp_path / "weights.pth"
        write(path)
        values["init_weights"] = str(path)
        return []

    return setup


def _truncated_model_file(path):
    model = build_stemseg(PRESETS["tiny"])
    save_model_checkpoint(model, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _model_file_of_another_architecture(path):
    # the tiny preset with 3 classes; the config trains 4
    save_model_checkpoint(build_stemseg(dataclasses.replace(PRESETS["tiny"], num_classes=3)), path)


def _model_file_with_nan_weights(path):
    model = build_stemseg(dataclasses.replace(PRESETS["tiny"], num_classes=4))
    with torch.no_grad():
        next(model.parameters()).fill_(float("nan"))
    save_model_checkpoint(model, path)


def _torch_save(obj):
    def write(path):
        torch.save(obj, path)

    return write


RANDOM_BYTES = random.Random(0).randbytes(4096)  # fixed: starts like no checkpoint format
assert RANDOM_BYTES[:1] not in (b"P", b"\x80")

BAD_INPUT = [
    (
        "checkpoint_every-0",
        _set("loop.checkpoint_every=0"),
        "loop.checkpoint_every must be an integer >= 1, got 0",
    ),
    ("max_steps-negative", _set("loop.max_steps=-3"), "loop.max_steps must be an integer >= 1"),
    (
        "max_steps-float",
        _set("loop.max_steps=2.5"),
        "loop.max_steps must be an integer >= 1, got float 2.5",
    ),
    (
        "max_steps-string",
        _set("loop.max_steps=many"),
        "loop.max_steps must be an integer >= 1, got str 'many'",
    ),
    ("lr-nan", _set("optimizer.lr=.nan"), "optimizer.lr must be a finite number > 0, got nan"),
    ("lr-zero", _set("optimizer.lr=0"), "optimizer.lr must be a finite number > 0, got 0"),
    (
        "momentum-1",
        _set("optimizer.momentum=1"),
        "optimizer.momentum must be a finite number in [0, 1), got 1",
    ),
    (
        "weight-inf",
        _set("data.sources.0.weight=.inf"),
        "data.sources[0].weight must be a finite number >= 0, got inf",
    ),
    (
        "loss-weight-negative",
        _set("losses.smoothness_weight=-10"),
        "losses.smoothness_weight must be a finite number >= 0",
    ),
    (
        "decay_steps-0",
        _set("schedule.kind=exponential", "schedule.decay_steps=0"),
        "schedule.decay_steps must be an integer >= 1, got 0",
    ),
    (
        "milestone-negative",
        _set("schedule.kind=step", "schedule.milestones=[3, -1]"),
        "schedule.milestones[1] must be an integer >= 0, got -1",
    ),
    (
        "seed-too-large",
        _set("loop.seed=99999999999"),
        "loop.seed must be an integer in [0, 4294967295], got 99999999999",
    ),
    (
        "tensorboard-not-bool",
        _set("loop.tensorboard=sometimes"),
        "loop.tensorboard must be true or false, got str 'sometimes'",
    ),
    ("precision-unknown", _set("loop.precision=fp8"), "loop.precision must be one of"),
    (
        "micro_batch-does-not-divide",
        _set("loop.micro_batch=3"),
        "loop.global_batch must be a multiple of loop.micro_batch = 3, got 2",
    ),
    ("max_dim-below-min_dim", _set("data.max_dim=32"), "data.max_dim must be >= data.min_dim"),
    ("set-not-yaml", _set("loop.max_steps=[1"), "--set loop.max_steps: '[1' is not a YAML value"),
    (
        "set-into-a-number",
        _set("loop.max_steps.deeper=1"),
        "--set loop.max_steps.deeper: cannot go into an int value",
    ),
    (
        "num_classes-override-0",
        _set("model_overrides.num_classes=0"),
        "model_overrides.num_classes must be an integer >= 2, got 0",
    ),
    (
        "model-override-unknown-key",
        _set("model_overrides.classes=4"),
        "model_overrides: unknown keys ['classes']",
    ),
    (
        "config-unknown-key",
        _edit(lambda values: values.update(optimiser={"lr": 1})),
        "unknown keys ['optimiser']",
    ),
    (
        "config-missing-key",
        _edit(lambda values: values.pop("data")),
        "missing required keys ['data']",
    ),
    (
        "source-wrong-type",
        _edit(lambda values: values["data"].update(sources={"kind": "ovis"})),
        "data.sources must be a list, got dict",
    ),
    ("config-a-list", _raw_config("- model: tiny\n"), "must hold a mapping of settings, got list"),
    ("config-not-yaml", _raw_config("model: [tiny\n"), "is not valid YAML"),
    ("config-not-utf8", _raw_config(b"model: tiny\nrun_dir: \xff\xfe\n"), "is not UTF-8 text"),
    (
        "config-missing",
        lambda tmp_path, values: ["--config", str(tmp_path / "absent.yaml")],
        "cannot read config",
    ),
    (
        "device-unknown",
        lambda tmp_path, values: ["--device", "gpu7"],
        "--device must be cpu, cuda or cuda:<index>, got 'gpu7'",
    ),
    ("device-absent", lambda tmp_path, values: ["--device", "cuda:99"], "--device cuda:99: "),
    (
        "annotations-missing",
        _edit(
            lambda values: values["data"]["sources"][0].update(
                annotations="/nonexistent/annotations.json"
            )
        ),
        "annotation file /nonexistent/annotations.json does not exist",
    ),
    (
        "images-missing",
        _edit(lambda values: values["data"]["sources"][0].update(images="/nonexistent/JPEGImages")),
        "/nonexistent/JPEGImages",
    ),
    (
        "init_weights-missing",
        _edit(lambda values: values.update(init_weights="/nonexistent.pth")),
        "init_weights /nonexistent.pth: checkpoint /nonexistent.pth does not exist",
    ),
    (
        "init_weights-truncated",
        _init_weights(_truncated_model_file),
        "weights.pth is damaged or truncated: PytorchStreamReader failed reading zip archive",
    ),
    (
        "init_weights-random-bytes",
        _init_weights(lambda path: path.write_bytes(RANDOM_BYTES)),
        "weights.pth is not a PyTorch checkpoint (neither torch.save's zip archive nor its legacy "
        "format)",
    ),
    (
        "init_weights-pickle-of-random-bytes",
        _init_weights(lambda path: path.write_bytes(b"\x80\x02" + RANDOM_BYTES)),
        "weights.pth: ",
    ),
    (
        "init_weights-a-list",
        _init_weights(_torch_save([1, 2, 3])),
        "the file holds a list, expected a state dict",
    ),
    (
        "init_weights-not-tensors",
        _init_weights(_torch_save({"model": {"conv.weight": "x"}})),
        "the file: entry 'conv.weight' is a str, expected named tensors only",
    ),
    (
        "init_weights-other-architecture",
        _init_weights(_model_file_of_another_architecture),
        "shape mismatch",
    ),
    (
        "init_weights-nan",
        _init_weights(_model_file_with_nan_weights),
        "holds NaN or infinite values (a diverged or damaged model)",
    ),
]


@pytest.mark.slow  # a process per case
@pytest.mark.parametrize(
    "setup, expected", [case[1:] for case in BAD_INPUT], ids=[case[0] for case in BAD_INPUT]
)
def test_bad_input_is_one_error_line_and_writes_nothing(base, tmp_path, setup, expected):
    values = config_values(base, tmp_path)
    extra = setup(tmp_path, values)
    arguments = ["--config", str(write_values(tmp_path, values))]
    if "--config" in extra:
        arguments = []
    before = snapshot(tmp_path, base["root"])
    result = run_train(arguments + extra, tmp_path)
    assert_one_error_line(result, expected)
    assert snapshot(tmp_path, base["root"]) == before  # no run folder, inputs untouched
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_the_torchrun_entry_point_reports_errors_the_same_way(base, tmp_path):
    values = config_values(base, tmp_path)
    result = run_train(
        ["--config", str(write_values(tmp_path, values)), "--set", "loop.checkpoint_every=0"],
        tmp_path,
        module="stemseg_fast",
    )
    assert_one_error_line(result, "loop.checkpoint_every must be an integer >= 1")
    assert not (tmp_path / "run").exists()


# --- run folders that cannot be resumed ---------------------------------------------------


def _copy_killed_run(base, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(base["killed_run"], run_dir)
    return run_dir


@pytest.mark.slow
def test_resuming_another_architecture_names_the_differing_fields(base, tmp_path):
    run_dir = _copy_killed_run(base, tmp_path)
    config = write_values(tmp_path, config_values(base, tmp_path))
    before = snapshot(tmp_path, base["root"])
    result = run_train(
        ["--config", str(config), "--set", "model_overrides.num_classes=5"], tmp_path
    )
    assert_one_error_line(
        result,
        f"cannot resume from {run_dir}/checkpoint_00000004.pt: it was "
        "trained with another model: model.num_classes (checkpoint 4, "
        "now 5)",
    )
    assert snapshot(tmp_path, base["root"]) == before


@pytest.mark.slow
def test_resuming_with_a_frozen_backbone_is_another_architecture(base, tmp_path):
    _copy_killed_run(base, tmp_path)
    config = write_values(tmp_path, config_values(base, tmp_path))
    before = snapshot(tmp_path, base["root"])
    result = run_train(["--config", str(config), "--set", "freeze_backbone=true"], tmp_path)
    assert_one_error_line(result, "freeze_backbone (checkpoint False, now True)")
    assert snapshot(tmp_path, base["root"]) == before


@pytest.mark.slow
def test_no_readable_checkpoint_is_one_error_naming_the_files(base, tmp_path):
    run_dir = _copy_killed_run(base, tmp_path)
    for name in ("checkpoint_00000002.pt", "checkpoint_00000004.pt"):
        (run_dir / name).write_bytes(b"not a checkpoint")
    config = write_values(tmp_path, config_values(base, tmp_path))
    before = snapshot(tmp_path, base["root"])
    result = run_train(["--config", str(config)], tmp_path)
    assert_one_error_line(result, "checkpoint_00000002.pt, checkpoint_00000004.pt cannot be read")
    assert snapshot(tmp_path, base["root"]) == before


def test_weights_that_do_not_fit_are_refused_before_loading_without_an_architecture_record(
    tmp_path,
):
    """Checkpoints of callers that give the Trainer no architecture record: the parameter
    shapes decide, still before any weight or optimiser state is loaded."""
    from test_trainer import OPTIMIZER, SCHEDULE, ToyDataset, toy_objective

    from stemseg_fast.training.config import LoopConfig

    loop = LoopConfig(
        max_steps=2,
        checkpoint_every=1,
        num_workers=0,
        tensorboard=False,
        progress_bar=False,
        global_batch=2,
    )

    def trainer(width):
        model = torch.nn.Sequential(torch.nn.Linear(5, width), torch.nn.Linear(width, 2))
        return Trainer(
            model,
            toy_objective,
            ToyDataset(),
            optimizer=OPTIMIZER,
            schedule=SCHEDULE,
            loop=loop,
            run_dir=str(tmp_path),
        )

    trainer(8).fit()
    with pytest.raises(
        ValueError,
        match=r"its weights do not fit the model \(0.bias: "
        r"checkpoint \[8\], model \[9\]",
    ):
        trainer(9)


# --- interruptions and resume ------------------------------------------------------------


@pytest.mark.slow
def test_kill_inside_a_checkpoint_write_resumes_to_bitwise_equal_weights(base, tmp_path):
    run_dir = tmp_path / "run"
    config = write_values(tmp_path, config_values(base, tmp_path))
    killed = run_train(
        ["--config", str(config)], tmp_path, prelude=KILL_INSIDE_CHECKPOINT_WRITE.format(step=4)
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    [partial] = partial_files(tmp_path)
    assert re.fullmatch(r"\.checkpoint_00000004\.\w+\.partial\.pt", os.path.basename(partial))
    assert os.path.dirname(partial) == str(run_dir)
    assert not (run_dir / "checkpoint_00000004.pt").exists()
    # files of the user's that look alike stay
    keep = {
        run_dir / "notes.partial.pt": b"mine",
        run_dir / ".checkpoint_00000004.partial.pt": b"mine too",
        tmp_path / ".checkpoint_00000002.abcdefgh.partial.pt": b"not in the run",
    }
    for path, data in keep.items():
        path.write_bytes(data)
    inputs = snapshot(base["root"])

    resumed = run_train(["--config", str(config)], tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert f"removed {partial}" in resumed.stderr
    assert f"resumed from {run_dir}/checkpoint_00000002.pt at step 2" in resumed.stderr
    assert not os.path.exists(partial)
    assert all(path.read_bytes() == data for path, data in keep.items())
    assert_bitwise_equal(final_weights(run_dir), base["reference"])
    assert snapshot(base["root"]) == inputs
    assert sorted(os.listdir(run_dir)) == sorted(
        [
            "checkpoint_00000004.pt",
            "checkpoint_00000006.pt",
            "model_final.pth",
            "tensorboard",
            *(path.name for path in keep if path.parent == run_dir),
        ]
    )


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])


DAMAGE = {
    "truncated": _truncate,
    "random-bytes": lambda path: path.write_bytes(os.urandom(path.stat().st_size)),
    "empty": lambda path: path.write_bytes(b""),
    "a-list": lambda path: torch.save([1, 2, 3], path),
    "another-format": lambda path: torch.save({"format": "other/1", "step": 4}, path),
    "incomplete": lambda path: torch.save(
        {key: value for key, value in torch.load(path, weights_only=True).items() if key != "rng"},
        path,
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("damage", DAMAGE.values(), ids=DAMAGE.keys())
def test_a_damaged_newest_checkpoint_falls_back_to_the_previous_one(base, tmp_path, damage):
    run_dir = _copy_killed_run(base, tmp_path)
    newest = run_dir / "checkpoint_00000004.pt"
    damage(newest)
    config = write_values(tmp_path, config_values(base, tmp_path))
    inputs = snapshot(base["root"])
    result = run_train(["--config", str(config)], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert f"skipping checkpoint {newest}: " in result.stderr
    assert f"resuming from the older checkpoint {run_dir}/checkpoint_00000002.pt" in result.stderr
    assert_bitwise_equal(final_weights(run_dir), base["reference"])
    assert snapshot(base["root"]) == inputs
    assert not partial_files(tmp_path)


@pytest.mark.slow
def test_sigterm_checkpoints_stops_and_resumes_to_bitwise_equal_weights(base, tmp_path):
    run_dir = tmp_path / "run"
    config = write_values(tmp_path, config_values(base, tmp_path))
    stopped = run_train(
        ["--config", str(config)],
        tmp_path,
        prelude=SIGNAL_AFTER_STEP.format(step=3, signal="SIGTERM"),
    )
    assert stopped.returncode == 3, stopped.stderr
    assert "Traceback" not in stopped.stderr
    assert "training stopped early; run the same command again" in stopped.stderr
    assert (run_dir / "checkpoint_00000003.pt").is_file()
    assert not (run_dir / "model_final.pth").exists()
    resumed = run_train(["--config", str(config)], tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resumed from {run_dir}/checkpoint_00000003.pt at step 3" in resumed.stderr
    assert_bitwise_equal(final_weights(run_dir), base["reference"])
    assert not partial_files(tmp_path)


def _numeric_fields(cls, seen=None):
    """(class name, field name) of every number or tuple of numbers in ``cls`` and the config
    dataclasses below it."""
    seen = set() if seen is None else seen
    found = []
    for item in dataclasses.fields(cls):
        kinds = [item.metadata.get("items", item.type), *typing.get_args(item.type)]
        kinds += [arg for kind in kinds for arg in typing.get_args(kind)]
        for kind in kinds:
            if dataclasses.is_dataclass(kind) and kind not in seen:
                seen.add(kind)
                found += _numeric_fields(kind, seen)
        if any(kind in (int, float) for kind in kinds):
            found.append((cls.__name__, item.name))
    return found


def test_every_number_of_the_training_config_has_a_range():
    """A number added to the config without a range would reach the trainer unchecked. The
    model's inference settings are checked where inference reads them."""
    from stemseg_fast.model.presets import InferenceConfig, STEmSegConfig
    from stemseg_fast.training.config import FIELD_RANGES
    from stemseg_fast.training.train import TrainConfig

    numeric = [
        (owner, name)
        for owner, name in _numeric_fields(TrainConfig)
        + _numeric_fields(STEmSegConfig, {InferenceConfig})
    ]
    assert [entry for entry in numeric if entry[1] not in FIELD_RANGES.get(entry[0], {})] == []
    named = {(owner, name) for owner, ranges in FIELD_RANGES.items() for name in ranges}
    assert named == set(numeric)  # and no range names a field that does not exist
