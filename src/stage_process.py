"""What every stage and command process does around its work: its --help answers before any slow import,
TensorFlow starts without its start-up log, it ends when DVC, which runs it, is gone, and a failure the user
can cause ends it with one line, not a traceback."""

import argparse
import errno
import glob
import importlib.util
import os
import signal
import subprocess
import sys
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


def argument_parser(module, doc, *examples):
    """A parser for `python -m <module>` whose --help shows doc (what the command does) and examples of its
    command line. Commands parse their arguments before they import TensorFlow, Keras, pandas or `kaggle`,
    which take seconds, so that --help answers at once."""
    return argparse.ArgumentParser(
        prog=f"python -m {module}",
        description=doc,
        epilog=("examples:\n" if len(examples) > 1 else "example:\n") + "\n".join(f"  {line}" for line in examples),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


# TensorFlow's C++ libraries log through absl, and what they log before absl is set up ignores
# TF_CPP_MIN_LOG_LEVEL, which no environment variable changes: each library's notes as `import tensorflow`
# loads it (oneDNN is on, no CUDA driver) and, on a machine without an NVIDIA GPU, the error of CUDA's first
# start when the devices are first listed. So stderr (fd 2, which C++ writes to) goes through a filter while
# TensorFlow loads and lists its devices, and then no more. The filter is a process of its own, so that a
# line this one wrote before it died is never lost, and it drops only these lines: absl's note that it is not
# set up, lines below TF_CPP_MIN_LOG_LEVEL, and the CUDA start's error where no NVIDIA device exists.
ABSL_LINE = r"[{severities}]\d{{4}} [\d:.]+ +\d+ [\w.]+:\d+\] "
ABSL_NOT_SET_UP = r"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR$"
NO_NVIDIA_CUDA_ERROR = r"E\d{4} [\d:.]+ +\d+ cuda_platform\.cc:\d+\] failed call to cuInit: "
STDERR_FILTER = """
import re, sys
noise = re.compile(sys.argv[1].encode())
for line in sys.stdin.buffer:
    if not noise.match(line):
        sys.stdout.buffer.write(line)
        sys.stdout.buffer.flush()
"""


def quiet_tensorflow_start():
    """Have the first `import tensorflow`, wherever it happens, load TensorFlow and list its devices with the
    start-up log filtered out of stderr (see tensorflow_start_noise)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # no INFO or WARNING lines once absl is set up
    if "tensorflow" not in sys.modules and QuietTensorFlowStart not in sys.meta_path:
        sys.meta_path.insert(0, QuietTensorFlowStart)


class QuietTensorFlowStart:
    """An import finder for `tensorflow` alone: it has the real loader run with stderr filtered, once."""

    @staticmethod
    def find_spec(name, path=None, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(QuietTensorFlowStart)
        spec = importlib.util.find_spec(name)
        if spec:
            load = spec.loader.exec_module

            def load_quietly(module):
                with stderr_without(tensorflow_start_noise()):
                    load(module)
                    module.config.list_physical_devices("GPU")  # starts CUDA: its error, if any, is logged now

            spec.loader.exec_module = load_quietly
        return spec


def tensorflow_start_noise(environ=os.environ):
    """A regular expression for the lines of TensorFlow's start-up log that TF_CPP_MIN_LOG_LEVEL asks to leave
    out, and for the error of a CUDA start on a machine with no NVIDIA device."""
    level = int(environ.get("TF_CPP_MIN_LOG_LEVEL") or 0)
    noise = [ABSL_NOT_SET_UP, ABSL_LINE.format(severities="IWEF"[:level])] if level > 0 else []
    if not nvidia_device_present():
        noise.append(NO_NVIDIA_CUDA_ERROR)
    return "|".join(f"(?:{pattern})" for pattern in noise) or "(?!)"


def nvidia_device_present():
    """Whether the machine has an NVIDIA GPU that CUDA could start on: its driver's devices, or WSL's."""
    return Path("/proc/driver/nvidia").exists() or bool(glob.glob("/dev/nvidia*")) or Path("/dev/dxg").exists()


@contextmanager
def stderr_without(pattern):
    """Within it, the lines written to fd 2 (by C++ code too) that the regular expression pattern matches
    from their start are dropped, and all others pass unchanged, in order."""
    sys.stderr.flush()
    stderr = os.dup(2)
    read, write = os.pipe()
    line_filter = subprocess.Popen(
        [sys.executable, "-I", "-S", "-c", STDERR_FILTER, pattern], stdin=read, stdout=stderr, stderr=stderr
    )
    os.close(read)
    os.dup2(write, 2)
    os.close(write)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(stderr, 2)
        os.close(stderr)
        line_filter.wait()  # its lines come before those written after this
