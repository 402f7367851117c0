import os

import pytest

from src.atomic import atomic_dir, atomic_path


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
