import re
import subprocess

import numpy as np
import pytest

from competition_data import BAD_INPUTS, competition_files, corrupt, csv_text
from src import config
from src.competition_csv import DataError
from src.prepare import main, prepare, split
from src.stage_process import UserError
from workdir import ROOT, make_workdir, run_module, set_param

SETTINGS = config.Prepare(val_fraction=0.25, sealed_fraction=0, seed=0)


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_stops_the_stage_with_one_line_and_no_output(tmp_path, monkeypatch, capsys, case):
    name, damage, message = BAD_INPUTS[case]
    raw = competition_files(tmp_path / "raw", train_rows=40, test_rows=20)
    damage(raw / name)
    inputs = sorted(raw.iterdir())
    make_workdir(tmp_path)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit:
        main(["raw", "prepared"])
    # SystemExit with a message: Python prints it to stderr and exits with status 1.
    assert isinstance(exit.value.code, str) and "\n" not in exit.value.code
    assert re.match(r"prepare: error: raw/" + message, exit.value.code), exit.value.code
    assert capsys.readouterr().out == ""
    assert not (tmp_path / "prepared").exists()
    assert sorted(raw.iterdir()) == inputs  # no temporary files left beside the inputs


def test_bad_input_exits_nonzero_from_the_command_line(tmp_path):
    raw = competition_files(tmp_path / "raw")
    corrupt(raw / "train.csv", 5, 3, "abc")
    result = run_module(make_workdir(tmp_path), "src.prepare", "raw", "prepared")
    assert result.returncode == 1
    expected = "prepare: error: raw/train.csv: line 5, column 3 (pixel1): 'abc' is not a plain decimal integer\n"
    assert result.stderr == expected
    assert not (tmp_path / "prepared").exists()


def test_bad_input_leaves_the_previous_outputs_intact(tmp_path):
    raw = competition_files(tmp_path / "raw")
    prepare(raw, tmp_path / "prepared", SETTINGS)
    before = {p.name: p.read_bytes() for p in (tmp_path / "prepared").iterdir()}
    corrupt(raw / "test.csv", 5, 1, "x")
    with pytest.raises(DataError, match="test.csv: line 5, column 1"):
        prepare(raw, tmp_path / "prepared", SETTINGS)
    assert {p.name: p.read_bytes() for p in (tmp_path / "prepared").iterdir()} == before


def test_split_is_stratified_and_seeded():
    labels = np.repeat(np.arange(10), 20).astype(np.uint8)
    images = np.arange(200).reshape(200, 1, 1, 1)
    (x_train, y_train), (x_val, y_val), (x_sealed, y_sealed) = split(images, labels, 0.25, seed=3)
    assert np.bincount(y_val).tolist() == [5] * 10 and len(y_sealed) == 0
    assert sorted(np.concatenate([x_train, x_val]).ravel()) == list(range(200))
    assert np.array_equal(split(images, labels, 0.25, seed=3)[1][0], x_val)
    assert not np.array_equal(split(images, labels, 0.25, seed=4)[1][0], x_val)


def test_the_sealed_split_comes_from_the_train_split_and_leaves_validation_as_it_was():
    labels = np.repeat(np.arange(10), 40).astype(np.uint8)
    images = np.arange(400).reshape(400, 1, 1, 1)
    (x_train, _), (x_val, _), (x_sealed, y_sealed) = split(images, labels, 0.25, 3, sealed_fraction=0.1)
    assert np.bincount(y_sealed).tolist() == [4] * 10 and len(x_train) == 260
    assert sorted(np.concatenate([x_train, x_val, x_sealed]).ravel()) == list(range(400))
    assert np.array_equal(x_val, split(images, labels, 0.25, 3)[1][0])
    assert np.array_equal(x_sealed, split(images, labels, 0.25, 3, sealed_fraction=0.1)[2][0])
    assert not np.array_equal(x_sealed, split(images, labels, 0.25, 4, sealed_fraction=0.1)[2][0])


@pytest.mark.parametrize(
    ("val", "sealed", "message"),
    [
        (0.25, 0.02, "prepare.sealed_fraction is 0.02: 2 of train.csv's 100 rows, fewer than its 10 digits"),
        (0.05, 0, "prepare.val_fraction is 0.05: 5 of train.csv's 100 rows, fewer than its 10 digits"),
    ],
)
def test_a_holdout_too_small_for_one_digit_of_each_class_is_refused_in_one_line(val, sealed, message):
    labels = np.repeat(np.arange(10), 10).astype(np.uint8)
    with pytest.raises(UserError, match=re.escape(message + "; a split needs one of each")):
        split(labels.reshape(100, 1, 1, 1), labels, val, 0, sealed_fraction=sealed)


def test_prepare_writes_the_four_splits(tmp_path):
    raw = competition_files(tmp_path / "raw", train_rows=100, test_rows=20)
    prepare(raw, tmp_path / "prepared", config.Prepare(val_fraction=0.2, sealed_fraction=0.1, seed=0))
    train, val, sealed, test = (
        np.load(tmp_path / "prepared" / f"{name}.npz") for name in ("train", "val", "sealed", "test")
    )
    assert train["x"].shape == (70, 28, 28, 1) and val["x"].shape == (20, 28, 28, 1)
    assert sealed["x"].shape == (10, 28, 28, 1) and sealed["y"].shape == (10,)
    assert test["x"].shape == (20, 28, 28, 1) and "y" not in test
    assert train["x"].dtype == np.uint8 and train["y"].dtype == np.uint8


def test_prepare_splits_as_its_settings_say(tmp_path):
    raw = competition_files(tmp_path / "raw", train_rows=100, test_rows=20)

    def validation(settings):
        prepare(raw, tmp_path / "prepared", settings)
        return np.load(tmp_path / "prepared" / "val.npz")["x"]

    def settings(seed):
        return config.Prepare(val_fraction=0.3, sealed_fraction=0, seed=seed)

    assert len(validation(settings(0))) == 30
    assert np.array_equal(validation(settings(0)), validation(settings(0)))
    assert not np.array_equal(validation(settings(1)), validation(settings(0)))


def test_prepare_keeps_the_sample_test_labels(tmp_path):
    raw = competition_files(tmp_path / "raw", test_rows=20)
    (raw / "test_labels.csv").write_text(csv_text(["ImageId", "Label"], [(i, i % 10) for i in range(1, 21)]))
    prepare(raw, tmp_path / "prepared", SETTINGS)
    assert np.load(tmp_path / "prepared" / "test.npz")["y"].tolist() == [i % 10 for i in range(1, 21)]


def test_the_stage_splits_as_params_yaml_says(tmp_path, monkeypatch, capsys):
    competition_files(tmp_path / "raw", train_rows=100, test_rows=20)
    make_workdir(tmp_path)
    set_param(tmp_path, "prepare.val_fraction", 0.3)
    monkeypatch.chdir(tmp_path)
    main(["raw", "prepared"])
    assert capsys.readouterr().out == "prepare: 60 train, 30 val, 10 sealed, 20 test digits -> prepared\n"
    assert len(np.load(tmp_path / "prepared" / "val.npz")["y"]) == 30


def test_a_full_disk_ends_in_one_line_and_writes_none_of_the_splits(tmp_path):
    """On a 3 MB file system the three splits (about 4 MB) cannot all be written: none is."""
    from src.raw_data import write_sample

    write_sample(tmp_path / "raw", config.load(ROOT / "params.yaml").data.sample)
    tiny = tmp_path / "tiny"
    tiny.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(tiny)], capture_output=True).returncode:
        pytest.skip("needs root to mount a small tmpfs: a full disk cannot be made otherwise")
    try:
        make_workdir(tmp_path)
        result = run_module(tmp_path, "src.prepare", "raw", tiny / "prepared")
        left = sorted(path.name for path in (tiny / "prepared").iterdir())
    finally:
        subprocess.run(["umount", str(tiny)], check=True)
    assert result.returncode == 1
    assert (
        result.stderr
        == f"prepare: error: {tiny}/prepared: no space left on the device; free some space, then run again\n"
    )
    assert left == []
