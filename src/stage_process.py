"""What every stage and command process does around its work: it ends when DVC, which runs it, is
gone, and a failure the user can cause ends it with one line, not a traceback."""

import errno
import os
import signal
import threading
from contextlib import contextmanager
from pathlib import Path

SHELLS = {"sh", "bash", "dash", "zsh", "ksh", "fish"}
WATCH_SECONDS = 0.2

_watched = []  # the processes whose end ends this one: DVC, and the shell it may run the stage in
PARENT_AT_START = os.getppid()  # read as the package is imported, before the slow imports a stop may come during


def end_with_parent():
    """End this process (SIGKILL: at once, writing nothing more) as soon as the process that
    started it is gone, and, where that is a shell that DVC started, as soon as DVC is gone.

    DVC runs a stage through $SHELL; a SIGTERM or SIGHUP kills DVC but not its children, which
    would otherwise run on and write outputs after DVC has stopped. Only under DVC: a stage run
    by hand, or a test, has no DVC to outlive.
    """
    if "DVC_STAGE" not in os.environ or _watched:  # DVC sets it for each stage it runs
        return
    parent = PARENT_AT_START
    _watched[:] = [parent]
    if _command_name(parent) in SHELLS:
        grandparent = _parent_of(parent)
        if grandparent:
            _watched.append(grandparent)
    threading.Thread(target=_watch, args=(parent,), daemon=True, name="end-with-parent").start()


def orphaned():
    """Whether a process that end_with_parent watches is gone."""
    return bool(_watched) and (os.getppid() != _watched[0] or not all(map(_alive, _watched[1:])))


def _watch(parent):
    while not orphaned():
        threading.Event().wait(WATCH_SECONDS)
    os.kill(os.getpid(), signal.SIGKILL)  # at once: a handler of SIGTERM (Keras, TensorFlow) could still write


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return _parent_of(pid) is not None or not Path("/proc").is_dir()


def _command_name(pid):
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _parent_of(pid):
    """pid's parent from /proc, or None where it cannot be read (no /proc, or pid is gone or a zombie)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    state, ppid = stat.rsplit(")", 1)[1].split()[:2]
    return None if state == "Z" else int(ppid)


class UserError(Exception):
    """A failure the user can cause and fix (a bad param, file, model or credential): its message says what and
    where, and the program ends with it in one line."""


# Errors of the machine that a user causes and fixes: a full disk, a permission, a read-only folder.
USER_OS_ERRORS = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EROFS: "the file system is read-only",
}


@contextmanager
def stage(program):
    """Run a stage's or command's work: it ends with DVC, and a UserError, or an OSError of USER_OS_ERRORS, ends
    it with one line `<program>: error: ...` and exit status 1, with no traceback."""
    end_with_parent()
    try:
        yield
    except UserError as error:
        exit_with(f"{program}: error: {error}")
    except OSError as error:
        if error.errno not in USER_OS_ERRORS:
            raise
        where = f"{error.filename}: " if error.filename else ""
        advice = "; free some space, then run again" if error.errno in (errno.ENOSPC, errno.EDQUOT) else ""
        exit_with(f"{program}: error: {where}{USER_OS_ERRORS[error.errno]}{advice}")


def exit_with(line):
    """End the program with line on stderr and exit status 1, leaving out the exception's traceback."""
    raise SystemExit(line) from None
