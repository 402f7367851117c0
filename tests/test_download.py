import hashlib
import json
import zipfile

import numpy as np
import pytest

from competition_data import competition_files, zip_of
from conftest import SHARED_DATA
from src.download import extract_competition_files, write_sample
from src.kaggle_access import KaggleError
from src.prepare import read_submission, read_test, read_train
from workdir import environment_without_kaggle, make_workdir, run_module


def test_sample_has_the_competition_layout_and_its_test_labels(tmp_path):
    write_sample(tmp_path / "raw", test_rows=1000, seed=0)
    raw = tmp_path / "raw"
    assert sorted(p.name for p in raw.iterdir()) == ["sample_submission.csv", "test.csv", "test_labels.csv",
                                                     "train.csv"]
    images, labels = read_train(raw / "train.csv")
    assert images.shape == (4000, 28, 28, 1) and np.bincount(labels).min() > 300
    assert read_test(raw / "test.csv").shape == (1000, 28, 28, 1)
    assert set(read_submission(raw / "sample_submission.csv", rows=1000)[:, 1]) == {0}
    assert len(set(read_submission(raw / "test_labels.csv", rows=1000)[:, 1])) == 10
    assert (raw / "train.csv").read_bytes().split(b"\r\n")[0].startswith(b"label,pixel0,pixel1,")


def archive(tmp_path, members):
    path = tmp_path / "competition.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for name in members:
            zf.writestr(name, "x")
    return path


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


def kaggle_workdir(tmp_path):
    workdir = make_workdir(tmp_path / "project")
    (workdir / "data").mkdir()
    (workdir / "data" / "source.json").write_text(json.dumps({"source": "kaggle"}))
    return workdir


def test_kaggle_download_is_byte_identical(tmp_path, kaggle_server, kaggle_env, competition_zip):
    kaggle_server.zip_bytes = competition_zip.read_bytes()
    workdir = kaggle_workdir(tmp_path)
    result = run_module(workdir, "src.download", "data/source.json", "data/raw", env=kaggle_env)
    assert result.returncode == 0, result.stderr
    expected = dict(line.split()[::-1] for line in (SHARED_DATA / "SHA256SUMS").read_text().splitlines())
    for name in ("train.csv", "test.csv", "sample_submission.csv"):
        assert hashlib.sha256((workdir / "data" / "raw" / name).read_bytes()).hexdigest() == expected[name]
    assert kaggle_server.calls == ["DownloadDataFiles"]
    assert sorted(p.name for p in (workdir / "data").iterdir()) == ["raw", "source.json"]  # no leftovers


@pytest.mark.parametrize(
    "status, advice",
    [
        (401, "Kaggle rejected the credentials (HTTP 401): create a token at https://www.kaggle.com/settings/api"),
        (403, "accept the competition's rules at https://www.kaggle.com/competitions/digit-recognizer/rules"),
    ],
)
def test_kaggle_refusals_say_what_to_do(tmp_path, kaggle_server, kaggle_env, status, advice):
    kaggle_server.zip_bytes = zip_of(competition_files(tmp_path / "files"))
    kaggle_server.failures["DownloadDataFiles"] = (status, "Permission denied")
    workdir = kaggle_workdir(tmp_path)
    result = run_module(workdir, "src.download", "data/source.json", "data/raw", env=kaggle_env)
    assert result.returncode != 0
    [message] = result.stderr.strip().splitlines()  # one sentence, no traceback
    assert message.startswith("download: error: ") and advice in message
    assert not (workdir / "data" / "raw").exists()


def test_kaggle_without_credentials_says_how_to_get_them(tmp_path):
    workdir = kaggle_workdir(tmp_path)
    result = run_module(workdir, "src.download", "data/source.json", "data/raw",
                        env=environment_without_kaggle(tmp_path))
    assert result.returncode != 0
    assert result.stderr.startswith("download: error: no Kaggle credentials were found: create a token at ")
    assert result.stdout == ""
