"""A stage's process: one line for a failure the user can cause, a traceback for a bug, and no life after DVC."""

import re
import subprocess
import sys
import textwrap

import pytest

from src import stage_process
from workdir import ROOT


def run_stage(body, tmp_path):
    """A process whose stage_process.stage("demo") runs body."""
    code = textwrap.dedent(f"""
        import errno, sys
        from src import stage_process
        from src.stage_process import UserError
        with stage_process.stage("demo"):
            {body}
        print("finished")
    """)
    return run_stage_code(code, tmp_path)


def run_stage_code(code, tmp_path):
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env={"PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    "body, line",
    [
        ("raise UserError('data/x.csv: line 2, column 3: bad')", "demo: error: data/x.csv: line 2, column 3: bad"),
        (
            "raise OSError(errno.ENOSPC, 'No space left on device', 'out/model.keras')",
            "demo: error: out/model.keras: no space left on the device; free some space, then run again",
        ),
        (
            "raise PermissionError(errno.EACCES, 'Permission denied', 'data/raw')",
            "demo: error: data/raw: permission denied",
        ),
        (
            "raise OSError(errno.EROFS, 'Read-only file system', 'eval')",
            "demo: error: eval: the file system is read-only",
        ),
    ],
)
def test_a_failure_the_user_can_cause_is_one_line_and_status_1(body, line, tmp_path):
    result = run_stage(body, tmp_path)
    assert (result.returncode, result.stdout, result.stderr) == (1, "", line + "\n")


@pytest.mark.parametrize("body", ["raise KeyError('a bug')", "raise OSError(errno.EIO, 'I/O error')"])
def test_a_bug_keeps_its_traceback(body, tmp_path):
    result = run_stage(body, tmp_path)
    assert result.returncode == 1 and "Traceback (most recent call last)" in result.stderr


def test_a_stage_whose_parent_is_gone_ends_and_writes_nothing(tmp_path):
    """A shell starts the stage in the background and exits once it runs: the stage's parent is gone."""
    code = (
        "import time; from src import stage_process; "
        "stage_process.end_with_parent(); open('started', 'w').close(); time.sleep(2); "
        "open('late.txt', 'w').write('written after its parent was gone')"
    )
    launcher = f'{sys.executable} -c "{code}" & until [ -e started ]; do sleep 0.05; done; echo $!'
    started = subprocess.run(
        ["sh", "-c", launcher],
        cwd=tmp_path,
        env={"PYTHONPATH": str(ROOT), "DVC_STAGE": "demo"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    pid = int(started.stdout)
    subprocess.run(["sh", "-c", f"while kill -0 {pid} 2>/dev/null; do sleep 0.1; done"], timeout=30)
    assert not (tmp_path / "late.txt").exists()


# Every command a user types, with its --help: none may load these, which take seconds.
COMMANDS = (
    [[sys.executable, "-m", f"src.{stage}"] for stage in ("source", "download", "prepare", "train")]
    + [[sys.executable, "-m", f"src.{stage}"] for stage in ("evaluate", "predict", "export", "plots_page")]
    + [[sys.executable, "-m", f"src.{command}"] for command in ("submit", "classify")]
    + [
        [sys.executable, str(ROOT / "bench" / script)]
        for script in ("predict_speed.py", "real_data_repro.py", "recipes.py", "classify_rendered.py")
    ]
)
SLOW_TO_LOAD = {"tensorflow", "keras", "pandas", "sklearn", "kaggle", "matplotlib"}


@pytest.mark.parametrize("command", COMMANDS, ids=lambda command: command[-1].split("/")[-1])
def test_help_says_what_the_command_does_before_any_slow_import(command):
    result = subprocess.run(
        [*command[:1], "-X", "importtime", *command[1:], "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: ") and "python " in result.stdout.split("usage: ", 1)[1]  # an example
    loaded = {line.rsplit("|", 1)[1].strip().split(".")[0] for line in result.stderr.splitlines() if "|" in line}
    assert not loaded & SLOW_TO_LOAD


NOISE = [  # TensorFlow 2.21's start-up lines on a machine with no GPU, logged before absl is set up
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796490595.762489   31099 port.cc:153] oneDNN custom operations are on. You may see slightly "
    "different numerical results due to floating-point round-off errors from different computation orders. To turn "
    "them off, set the environment variable `TF_ENABLE_ONEDNN_OPTS=0`.",
    "I0000 00:00:1796490595.763639   31099 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will "
    "not be used.",
    "E0000 00:00:1796490599.843698   31099 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: Failed "
    "call to cuInit: UNKNOWN ERROR (303)",
]
GENUINE = [
    "E0000 00:00:1796490599.843698   31099 gpu_device.cc:52] an error of TensorFlow's",
    "Traceback (most recent call last):",
    "a line, and one without its end",
]


def test_the_start_up_filter_drops_only_noise_and_loses_nothing_when_the_process_dies(tmp_path):
    code = textwrap.dedent(f"""
        import os, sys, warnings
        from src import stage_process
        with stage_process.stderr_without(stage_process.tensorflow_start_noise({{"TF_CPP_MIN_LOG_LEVEL": "2"}})):
            for line in {[*NOISE, *GENUINE]!r}:
                os.write(2, (line + "\\n").encode())
            warnings.warn("a genuine warning")
            os.write(2, b"the end")
            os._exit(3)
    """)
    result = run_stage_code(code, tmp_path)
    assert result.returncode == 3
    lines = result.stderr.splitlines()
    assert lines[: len(GENUINE)] == GENUINE and "UserWarning: a genuine warning" in result.stderr
    assert lines[-1] == "the end"
    assert not set(NOISE) & set(lines)


@pytest.mark.parametrize("level, dropped", [("0", []), ("1", NOISE[:3]), ("3", NOISE)])
def test_the_filter_follows_tf_cpp_min_log_level(level, dropped, monkeypatch):
    monkeypatch.setattr(stage_process, "nvidia_device_present", lambda: True)  # a CUDA error is then an error
    noise = re.compile(stage_process.tensorflow_start_noise({"TF_CPP_MIN_LOG_LEVEL": level}))
    assert [line for line in NOISE if noise.match(line)] == dropped


def test_tensorflow_starts_without_noise_and_its_errors_and_warnings_still_show(tmp_path):
    code = "import warnings, src, tensorflow as tf; warnings.warn('a genuine warning'); tf.reshape(tf.range(3), (2, 2))"
    result = run_stage_code(code, tmp_path)
    assert result.returncode == 1
    assert "UserWarning: a genuine warning" in result.stderr and "InvalidArgumentError" in result.stderr
    if not stage_process.nvidia_device_present():
        assert not re.search(r"absl|cuInit|cuda|oneDNN|^[IWE]0000 ", result.stderr, re.MULTILINE), result.stderr
