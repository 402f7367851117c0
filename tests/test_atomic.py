import os
import signal
import subprocess
import sys

import pytest

from src.atomic import atomic_dir, atomic_path, finish_replacing
from workdir import ROOT, ctrl_c_as_in_a_terminal


def test_atomic_path_replaces_on_success(tmp_path):
    target = tmp_path / "out" / "model.keras"
    with atomic_path(target) as tmp:
        assert tmp.suffix == ".keras" and tmp.parent == target.parent
        tmp.write_text("new")
    assert target.read_text() == "new"
    assert os.listdir(target.parent) == ["model.keras"]
    assert target.stat().st_mode & 0o044  # the usual mode, not mkstemp's private one


def test_atomic_path_keeps_the_old_file_on_error(tmp_path):
    target = tmp_path / "submission.csv"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["submission.csv"]


def test_atomic_dir_replaces_a_whole_folder(tmp_path):
    target = tmp_path / "raw"
    target.mkdir()
    (target / "stale.csv").write_text("old")
    with atomic_dir(target) as tmp:
        (tmp / "train.csv").write_text("new")
    assert os.listdir(target) == ["train.csv"]
    assert os.listdir(tmp_path) == ["raw"]


def test_atomic_dir_keeps_the_old_folder_on_error(tmp_path):
    target = tmp_path / "raw"
    target.mkdir()
    (target / "train.csv").write_text("old")
    with pytest.raises(KeyboardInterrupt), atomic_dir(target) as tmp:
        (tmp / "train.csv").write_text("half")
        raise KeyboardInterrupt
    assert (target / "train.csv").read_text() == "old"
    assert os.listdir(tmp_path) == ["raw"]


WRITER = """
import sys, time
from src.atomic import atomic_dir, atomic_path
target = sys.argv[2]
with (atomic_path if sys.argv[1] == "file" else atomic_dir)(target) as tmp:
    (tmp if sys.argv[1] == "file" else tmp / "train.csv").write_text("half")
    print("writing", flush=True)
    time.sleep(60)
"""


def kill_mid_write(kind, target, sig):
    """Start a real process writing target, and send it sig while the write is half done."""
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, kind, target],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=ctrl_c_as_in_a_terminal,
    )
    assert writer.stdout.readline() == "writing\n"
    writer.send_signal(sig)
    stderr = writer.communicate(timeout=30)[1]
    return writer.returncode, stderr


@pytest.mark.parametrize("kind", ["file", "dir"])
def test_ctrl_c_mid_write_keeps_the_old_output_and_leaves_nothing(tmp_path, kind):
    target = tmp_path / "submission.csv" if kind == "file" else tmp_path / "raw"
    with (atomic_path if kind == "file" else atomic_dir)(target) as tmp:
        (tmp if kind == "file" else tmp / "train.csv").write_text("old")
    returncode, stderr = kill_mid_write(kind, target, signal.SIGINT)
    assert returncode == -signal.SIGINT and "KeyboardInterrupt" in stderr
    assert (target if kind == "file" else target / "train.csv").read_text() == "old"
    assert os.listdir(tmp_path) == [target.name]


@pytest.mark.parametrize("kind", ["file", "dir"])
def test_kill_9_mid_write_leaves_no_output_and_the_next_write_cleans_up(tmp_path, kind):
    target = tmp_path / "model.keras" if kind == "file" else tmp_path / "raw"
    returncode, _ = kill_mid_write(kind, target, signal.SIGKILL)
    assert returncode == -signal.SIGKILL
    assert not target.exists()
    [leftover] = os.listdir(tmp_path)
    assert leftover.startswith(f".{target.name}.") and leftover.endswith(".tmp" + (target.suffix))
    with (atomic_path if kind == "file" else atomic_dir)(target) as tmp:
        (tmp if kind == "file" else tmp / "train.csv").write_text("new")
    assert os.listdir(tmp_path) == [target.name]


def test_a_kill_between_the_two_renames_of_a_folder_loses_nothing(tmp_path):
    target = tmp_path / "backup"
    aside = tmp_path / ".backup.old"  # where atomic_dir had moved the old folder when the kill came
    aside.mkdir()
    (aside / "epoch").write_text("2")
    finish_replacing(target)
    assert (target / "epoch").read_text() == "2" and not aside.exists()
    aside.mkdir()  # a kill after both renames, before the old copy was removed
    finish_replacing(target)
    assert (target / "epoch").read_text() == "2" and not aside.exists()
    with atomic_dir(target) as tmp:
        (tmp / "epoch").write_text("3")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["backup"] and (target / "epoch").read_text() == "3"


def test_files_that_belong_together_are_all_replaced_or_none(tmp_path):
    from src.atomic import atomic_paths

    old = {name: f"old {name}" for name in ("a.txt", "b.txt")}
    for name, text in old.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(OSError), atomic_paths(tmp_path / "a.txt", tmp_path / "b.txt") as (a, b):
        a.write_text("new a")
        raise OSError(28, "No space left on device")  # the disk fills while b is written
    assert {name: (tmp_path / name).read_text() for name in old} == old
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a.txt", "b.txt"]
    with atomic_paths(tmp_path / "a.txt", tmp_path / "b.txt") as (a, b):
        a.write_text("new a")
        b.write_text("new b")
    assert (tmp_path / "a.txt").read_text() == "new a" and (tmp_path / "b.txt").read_text() == "new b"
