"""Write outputs so that a crash or Ctrl-C leaves the old file or none, never half a file."""

import glob
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from . import stage_process


@contextmanager
def atomic_path(path):
    """Yield a temporary path beside `path`; on success rename it onto `path`.

    The temporary file lives in the same folder, so that the final rename is atomic, and
    keeps the extension, because writers such as Keras and NumPy pick the format from it.
    On any error, Ctrl-C included, it is removed and `path` is left as it was; one left by
    a kill is removed by the next write of `path`.
    """
    with atomic_paths(path) as (tmp,):
        yield tmp


@contextmanager
def atomic_paths(*paths):
    """atomic_path for several files that belong together: each is written beside its place, and only when all
    are written are they renamed onto their places, so that a failure (a full disk) replaces none of them."""
    paths = [Path(path) for path in paths]
    tmps = []
    try:
        for path in paths:
            path.parent.mkdir(parents=True, exist_ok=True)
            remove_leftovers(path, ".tmp" + path.suffix)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + path.suffix, dir=path.parent)
            os.close(fd)
            tmps.append(Path(tmp))
            tmps[-1].chmod(0o666 & ~_umask())  # mkstemp makes it private; outputs get the usual mode
        yield tmps
        orphaned_stage_stops()
        for tmp, path in zip(tmps, paths, strict=True):
            os.replace(tmp, path)
    except BaseException as error:
        for tmp in tmps:
            tmp.unlink(missing_ok=True)
        if isinstance(error, OSError) and not error.filename:  # name what a full disk cut short
            where = paths[0] if len(paths) == 1 else os.path.commonpath([path.parent for path in paths])
            raise OSError(error.errno, error.strerror, str(where)) from None
        raise


@contextmanager
def atomic_dir(path):
    """Yield an empty temporary folder beside `path`; on success it replaces `path` whole."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    finish_replacing(path)
    remove_leftovers(path, ".tmp")
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    tmp.chmod(0o777 & ~_umask())
    try:
        yield tmp
        orphaned_stage_stops()
        if path.exists():
            # A folder cannot be renamed onto another: move the old one aside first.
            os.replace(path, old_copy(path))
            os.replace(tmp, path)
            shutil.rmtree(old_copy(path))
        else:
            os.replace(tmp, path)
    except BaseException as error:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(error, OSError) and not error.filename:
            raise OSError(error.errno, error.strerror, str(path)) from None  # name the folder a full disk cut
        raise


def finish_replacing(path):
    """Settle a replacement of the folder `path` that a kill cut short: put the old copy back
    if it is all there is, else drop it. Call before reading `path`."""
    old = old_copy(path)
    if old.exists():
        os.replace(old, path) if not path.exists() else shutil.rmtree(old)


def old_copy(path):
    return path.with_name(f".{path.name}.old")


def remove_leftovers(path, suffix):
    """Remove the temporaries that a killed writer of `path` left beside it.

    DVC runs one stage at a time, so no live writer of the same output can own them.
    """
    for leftover in path.parent.glob(f".{glob.escape(path.name)}.*{suffix}"):
        remove(leftover)


def orphaned_stage_stops():
    """A stage whose DVC is gone ends here, before it replaces any output (see stage_process)."""
    if stage_process.orphaned():
        raise SystemExit(1)


def remove(path):
    """Remove a file or a folder."""
    shutil.rmtree(path) if path.is_dir() else path.unlink()


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask
