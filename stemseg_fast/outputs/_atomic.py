"""A folder of outputs that appears whole or not at all (``fileio.atomic_output`` for one file)."""
import contextlib
import os
import shutil
import tempfile


@contextlib.contextmanager
def atomic_output_dir(path):
    """Yield a temporary folder beside ``path``; on success it replaces ``path`` (an existing
    folder there is removed only after the new one is in place), on error it is removed."""
    path = os.path.abspath(path)
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    temporary = tempfile.mkdtemp(prefix=f".{os.path.basename(path)}.", suffix=".partial",
                                 dir=parent)
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
