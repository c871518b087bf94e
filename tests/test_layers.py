"""Imports point down only: each module may import its own layer and the layers below it,
never one above, and the stages of one layer (inference, training, evaluation) stay apart.
Read from the source with ``ast``, so an import inside a function counts as much as one at the
top. The README's "Layers" section draws the same table."""

import ast
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent
# Folders installed under the stemseg_fast namespace (setup.py package_dir).
PACKAGE_FOLDERS = {
    "stemseg_fast": REPO / "stemseg_fast",
    "stemseg_fast.kernels": REPO / "kernels",
    "stemseg_fast.training": REPO / "training",
}

# Lowest first. Names are module or package prefixes below ``stemseg_fast``.
LAYERS = (
    ("io", "tracks", "benchmarks", "categories", "config", "distributed", "threads", "synthetic"),
    ("kernels",),
    ("model",),
    ("inference", "training", "evaluation"),  # stages: none imports another
    ("outputs",),
    ("demo",),
    ("cli", "__main__"),
)
STAGES = LAYERS[3]


def _part(module):
    """The LAYERS entry a dotted module name belongs to (``None`` for the package itself)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def _level(part):
    return next(index for index, names in enumerate(LAYERS) if part in names)


def _modules():
    for prefix, folder in PACKAGE_FOLDERS.items():
        for path in sorted(folder.rglob("*.py")):
            relative = path.relative_to(folder).with_suffix("")
            if prefix == "stemseg_fast" and relative.parts[0] in ("kernels", "training"):
                continue
            parts = [part for part in relative.parts if part != "__init__"]
            yield ".".join([prefix, *parts]), path


def _imported(module, path):
    """Every stemseg_fast module ``path`` imports, absolute or relative, anywhere in it."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                names = [".".join(base + ([node.module] if node.module else []))]
            else:
                names = [node.module]
        else:
            continue
        yield from (name for name in names if name.split(".")[0] == "stemseg_fast")


def test_every_part_is_in_a_layer():
    parts = {_part(module) for module, _ in _modules()} - {None}
    placed = {name for names in LAYERS for name in names}
    assert parts <= placed, f"put {sorted(parts - placed)} in a layer of LAYERS"


@pytest.mark.parametrize("module, path", list(_modules()), ids=lambda value: str(value))
def test_no_import_reaches_up_or_across_stages(module, path):
    importer = _part(module)
    if importer is None:  # stemseg_fast/__init__.py: the lazy Predictor at the top
        return
    for imported in _imported(module, path):
        target = _part(imported)
        if target is None or target == importer:
            continue
        assert _level(target) <= _level(importer), f"{module} imports {imported}, a layer above it"
        if importer in STAGES and target in STAGES:
            raise AssertionError(f"{module} imports {imported}: the stages stay apart")
