"""A stage's process: one line for a failure the user can cause, a traceback for a bug, and no life after DVC."""

import subprocess
import sys
import textwrap

import pytest

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
