"""Writing outputs atomically: a reader never sees a partial file or folder, and a failed run
leaves none. Temporary names sit beside the target (same filesystem, so the final rename is
atomic) and get the permissions a plain ``open`` would give (``mkstemp`` makes files 0600)."""
import contextlib
import json
import os
import shutil
import tempfile


def _default_mode(base):
    umask = os.umask(0)
    os.umask(umask)
    return base & ~umask


@contextlib.contextmanager
def atomic_output(path):
    """Yield a temporary path beside ``path``; on success it replaces ``path``, on error it is
    removed. The temporary name keeps the extension, so writers that pick a format by the file
    name (OpenCV, PIL) still work."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    stem, extension = os.path.splitext(os.path.basename(path))
    handle, temporary = tempfile.mkstemp(prefix=f".{stem}.", suffix=f".partial{extension}",
                                         dir=directory)
    os.close(handle)
    os.chmod(temporary, _default_mode(0o666))
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


@contextlib.contextmanager
def atomic_output_dir(path):
    """Yield a temporary folder beside ``path``; on success it replaces ``path`` (an existing
    folder there is removed only after the new one is in place), on error it is removed."""
    path = os.path.abspath(path)
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    temporary = tempfile.mkdtemp(prefix=f".{os.path.basename(path)}.", suffix=".partial",
                                 dir=parent)
    os.chmod(temporary, _default_mode(0o777))
    try:
        yield temporary
        if os.path.exists(path):
            retired = tempfile.mkdtemp(prefix=f".{os.path.basename(path)}.", suffix=".old",
                                       dir=parent)
            os.replace(path, os.path.join(retired, "previous"))
            os.replace(temporary, path)
            shutil.rmtree(retired)
        else:
            os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            shutil.rmtree(temporary)


def read_json(path, what):
    """Parse a JSON file; errors name ``what`` it is ("results file", ...) and the path:
    FileNotFoundError if it is missing, ValueError if it is unreadable or not JSON."""
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} {path} does not exist") from None
    except OSError as error:
        raise ValueError(f"cannot read {what} {path}: {error.strerror}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{what} {path} is not valid JSON: {error}") from None


def write_json(path, data, **dump_options):
    """Dump ``data`` as JSON to ``path`` atomically."""
    with atomic_output(path) as temporary:
        with open(temporary, "w", encoding="utf-8") as handle:
            json.dump(data, handle, **dump_options)
