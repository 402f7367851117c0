import zipfile

import numpy as np
import pytest

from competition_data import competition_files, zip_of
from src import config
from src.competition_csv import read_submission, read_test, read_train
from src.kaggle_access import KaggleError
from src.raw_data import COMPETITION_FILES, extract_competition_files, write_sample


def test_sample_has_the_competition_layout_and_its_test_labels(tmp_path):
    write_sample(tmp_path / "raw", config.Sample(test_rows=1000, seed=0))
    raw = tmp_path / "raw"
    assert sorted(p.name for p in raw.iterdir()) == [
        "sample_submission.csv",
        "test.csv",
        "test_labels.csv",
        "train.csv",
    ]
    images, labels = read_train(raw / "train.csv")
    assert images.shape == (4000, 28, 28, 1) and np.bincount(labels).min() > 300
    assert read_test(raw / "test.csv").shape == (1000, 28, 28, 1)
    assert set(read_submission(raw / "sample_submission.csv", rows=1000)[:, 1]) == {0}
    assert len(set(read_submission(raw / "test_labels.csv", rows=1000)[:, 1])) == 10
    assert (raw / "train.csv").read_bytes().split(b"\r\n")[0].startswith(b"label,pixel0,pixel1,")


def test_the_sample_split_follows_its_settings(tmp_path):
    def test_images(seed):
        write_sample(tmp_path / f"raw{seed}", config.Sample(test_rows=10, seed=seed))
        return read_test(tmp_path / f"raw{seed}" / "test.csv")

    first = test_images(0)
    assert first.shape == (10, 28, 28, 1)
    assert not np.array_equal(test_images(1), first)


def archive(tmp_path, members):
    path = tmp_path / "competition.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for name in members:
            zf.writestr(name, "x")
    return path


def test_the_competition_files_are_extracted_byte_identical(tmp_path):
    files = competition_files(tmp_path / "files")
    path = tmp_path / "competition.zip"
    path.write_bytes(zip_of(files))
    extract_competition_files(path, tmp_path / "raw")
    assert sorted(p.name for p in (tmp_path / "raw").iterdir()) == sorted(COMPETITION_FILES)
    for name in COMPETITION_FILES:
        assert (tmp_path / "raw" / name).read_bytes() == (files / name).read_bytes()


@pytest.mark.parametrize("unsafe", ["../train.csv", "/etc/train.csv", "data/../../x.csv", "C:/x.csv"])
def test_unsafe_members_are_refused(tmp_path, unsafe):
    path = archive(tmp_path, ["train.csv", "test.csv", "sample_submission.csv", unsafe])
    with pytest.raises(KaggleError, match="refusing the unsafe member path"):
        extract_competition_files(path, tmp_path / "raw")
    assert not (tmp_path / "raw").exists()


def test_a_missing_file_is_named(tmp_path):
    path = archive(tmp_path, ["train.csv", "sample_submission.csv"])
    with pytest.raises(KaggleError, match="the archive lacks test.csv"):
        extract_competition_files(path, tmp_path / "raw")


def test_a_local_folder_is_copied_whole_and_one_missing_a_file_is_named(tmp_path):
    from src.raw_data import copy_local
    from src.stage_process import UserError

    local = tmp_path / "input"
    local.mkdir()
    for name in COMPETITION_FILES:
        (local / name).write_bytes(f"{name}\r\n".encode())
    copy_local(local, tmp_path / "raw")
    assert {p.name: p.read_bytes() for p in (tmp_path / "raw").iterdir()} == {
        name: (local / name).read_bytes() for name in COMPETITION_FILES
    }
    (local / "test.csv").unlink()
    with pytest.raises(UserError, match=rf"^{local}: no test.csv there \(data.local_dir in params.yaml\)"):
        copy_local(local, tmp_path / "raw2")
    assert not (tmp_path / "raw2").exists()
