"""Writing outputs safely.

Atomic: a reader never sees a partial file or folder, and a failed run leaves none. Temporary
names sit beside the target (same filesystem, so the final rename is atomic) and get the
permissions a plain ``open`` would give (``mkstemp`` makes files 0600).

Contained: every name that comes from an input (a video's folder name in an annotation file, a
sequence name) becomes an output name only through :func:`output_path`, which accepts a single
path component and proves the result lies inside the output folder the user named. A folder
writer replaces an existing folder only when it recognises it as its own output.
"""

import contextlib
import json
import os
import re
import shutil
import tempfile
import zipfile
from typing import Any, Callable, Iterable, Iterator, Optional, Union

import numpy as np

# The names mkstemp/mkdtemp give our temporaries: ".<stem>.<8 random chars>.partial[<ext>]",
# and ".<stem>.<8 random chars>.old" for a folder being retired.
_TEMPORARY_NAME = re.compile(r"^\..+\.[a-z0-9_]{8}\.(partial(\.[A-Za-z0-9]+)?|old)$")

# A file or folder name as the callers pass it: a str or any os.PathLike.
PathLike = Union[str, os.PathLike]


class UnsafeOutputError(ValueError):
    """An output name or path that would leave the output folder or replace foreign data."""


def check_output_name(name: str, what: str) -> str:
    """``name`` if it can name one file or folder inside an output folder: a non-empty single
    path component, not ``.`` or ``..``, without ``/``, ``\\`` or NUL. ``what`` says where the
    name came from (e.g. "annotation file a.json: videos[3] folder name")."""
    if (
        not isinstance(name, str)
        or name in ("", ".", "..")
        or any(character in name for character in "/\\\0")
    ):
        raise UnsafeOutputError(
            f"{what} {name!r} cannot name an output: expected a single file or folder name "
            f"(no '/', '\\', '..', and not an absolute path)"
        )
    return name


def output_path(out_dir: PathLike, *names: str, what: str = "output name") -> str:
    """``out_dir/names[0]/names[1]/...`` as an absolute path, each name checked by
    :func:`check_output_name`; raises :class:`UnsafeOutputError` unless the result lies inside
    ``out_dir`` and no part of it below ``out_dir`` is a symbolic link. Every writer that takes
    a name from an input builds its path here."""
    root = os.path.abspath(os.fspath(out_dir))
    path = os.path.join(root, *(check_output_name(name, what) for name in names))
    if os.path.commonpath([root, path]) != root or path == root:
        raise UnsafeOutputError(f"{what}: {path} is not inside the output folder {root}")
    inside = root
    for name in names:  # a link below the output folder could lead anywhere: never follow one
        inside = os.path.join(inside, name)
        if os.path.islink(inside):
            raise UnsafeOutputError(
                f"{inside} is a symbolic link: outputs are never written "
                f"through links inside the output folder {root}"
            )
    return path


def check_not_an_input(
    output: PathLike, inputs: Iterable[Optional[PathLike]], what: str = "output"
) -> None:
    """Raise :class:`UnsafeOutputError` if the file ``output`` would replace one of ``inputs``
    (compared after resolving links): a tool must never overwrite what it reads."""
    target = os.path.realpath(os.fspath(output))
    for source in inputs:
        if source is not None and os.path.realpath(os.fspath(source)) == target:
            raise UnsafeOutputError(
                f"{what} {output} is one of the inputs ({source}); choose another path"
            )


def remove_partial_outputs(folder: PathLike) -> list:
    """Delete the temporaries an interrupted earlier run left directly in ``folder`` (only names
    of the form this module gives them); returns the removed paths. A folder that is a link is
    left alone."""
    if os.path.islink(folder) or not os.path.isdir(folder):
        return []
    removed = []
    for entry in os.listdir(folder):
        path = os.path.join(folder, entry)
        if not _TEMPORARY_NAME.match(entry) or os.path.islink(path):
            continue
        if os.path.isdir(path):
            shutil.rmtree(path)
        else:
            os.unlink(path)
        removed.append(path)
    return removed


def _default_mode(base):
    umask = os.umask(0)
    os.umask(umask)
    return base & ~umask


@contextlib.contextmanager
def atomic_output(path: PathLike) -> Iterator[str]:
    """Yield a temporary path beside ``path``; on success it replaces ``path``, on error it is
    removed. The temporary name keeps the extension, so writers that pick a format by the file
    name (OpenCV, PIL) still work."""
    # One absolute spelling for both names: the kernel resolves "a/../b" component by
    # component, so the raw path and its abspath can name different folders.
    path = os.path.abspath(os.fspath(path))
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    stem, extension = os.path.splitext(os.path.basename(path))
    handle, temporary = tempfile.mkstemp(
        prefix=f".{stem}.", suffix=f".partial{extension}", dir=directory
    )
    os.close(handle)
    os.chmod(temporary, _default_mode(0o666))
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


@contextlib.contextmanager
def atomic_output_dir(
    path: PathLike, *, replaceable: Optional[Callable[[str], bool]] = None
) -> Iterator[str]:
    """Yield a temporary folder beside ``path``; on success it replaces ``path``, on error it is
    removed.

    An existing folder at ``path`` is replaced only if ``replaceable(path)`` says it is this
    tool's own output (e.g. an earlier run's), and removed only after the new one is in place;
    anything else there raises :class:`UnsafeOutputError` before any work is done.
    """
    path = os.path.abspath(os.fspath(path))
    parent = os.path.dirname(path)
    if os.path.lexists(path) and (
        os.path.islink(path)
        or not os.path.isdir(path)
        or replaceable is None
        or not replaceable(path)
    ):
        raise UnsafeOutputError(
            f"{path} already exists and is not an output of this tool; move it away or choose "
            f"another output folder"
        )
    os.makedirs(parent, exist_ok=True)
    temporary = tempfile.mkdtemp(
        prefix=f".{os.path.basename(path)}.", suffix=".partial", dir=parent
    )
    os.chmod(temporary, _default_mode(0o777))
    try:
        yield temporary
        if os.path.exists(path):
            retired = tempfile.mkdtemp(
                prefix=f".{os.path.basename(path)}.", suffix=".old", dir=parent
            )
            os.replace(path, os.path.join(retired, "previous"))
            os.replace(temporary, path)
            shutil.rmtree(retired)
        else:
            os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            shutil.rmtree(temporary)


def read_json(path: PathLike, what: str) -> Any:
    """Parse a JSON file; errors name ``what`` it is ("results file", ...) and the path:
    FileNotFoundError if it is missing, ValueError if it is unreadable or not JSON."""
    if os.path.exists(path) and not os.path.isfile(path):  # a FIFO would block forever
        raise ValueError(f"{what} {path} is not a regular file")
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} {path} does not exist") from None
    except OSError as error:
        raise ValueError(f"cannot read {what} {path}: {error.strerror}") from None
    return parse_json(data, path, what)


def parse_json(data: bytes, path: PathLike, what: str) -> Any:
    """The JSON value of ``data`` (UTF-8) read from ``path``; one ``ValueError`` naming ``what``
    and ``path`` for text that is not UTF-8, not JSON, or nested too deeply to parse."""
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise ValueError(
            f"{what} {path} is not UTF-8 text (byte {error.start}); expected a JSON file"
        ) from None
    except RecursionError:
        raise ValueError(f"{what} {path} nests its JSON too deeply to be read") from None
    except ValueError as error:  # JSONDecodeError, and integers too long to convert
        raise ValueError(f"{what} {path} is not valid JSON: {error}") from None


def write_json(path: PathLike, data: Any, **dump_options: Any) -> None:
    """Dump ``data`` as JSON to ``path`` atomically."""
    with atomic_output(path) as temporary:
        with open(temporary, "w", encoding="utf-8") as handle:
            json.dump(data, handle, **dump_options)


def read_json_document(source: Any, what: str) -> Any:
    """A JSON document from a path (or a zip archive holding exactly one ``.json``, as CodaLab
    takes results), or ``source`` itself when it is already parsed; errors name ``what``."""
    if not isinstance(source, (str, os.PathLike)):
        return source
    path = os.fspath(source)
    if not os.path.isfile(path) or not zipfile.is_zipfile(path):
        return read_json(path, what)
    try:
        with zipfile.ZipFile(path) as archive:
            members = [name for name in archive.namelist() if name.endswith(".json")]
            data = archive.read(members[0]) if len(members) == 1 else None
    except (zipfile.BadZipFile, OSError) as error:
        raise ValueError(f"{what}: cannot read {path}: {error}") from None
    if data is None:
        raise ValueError(f"{what}: expected one .json inside {path}, found {members}")
    return parse_json(data, path, what)


@contextlib.contextmanager
def naming_the_file(source: Any, what: str) -> Iterator[None]:
    """Errors about entries of a file name the file (those of parsed objects stand alone)."""
    try:
        yield
    except ValueError as error:
        if not isinstance(source, (str, os.PathLike)):
            raise
        raise ValueError(f"{what} {os.fspath(source)}: {error}") from None


def json_field(entry: Any, key: str, where: str) -> Any:
    """``entry[key]`` of a JSON object, or a ``ValueError`` naming ``where``."""
    if not isinstance(entry, dict) or key not in entry:
        raise ValueError(f"{where}: missing key '{key}'")
    return entry[key]


def json_integer(value: Any, where: str, name: str) -> int:
    """``value`` as an int (not a bool, not a float), or a ``ValueError`` naming the field."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{where}: '{name}' must be an integer, got {value!r}")
    return int(value)
