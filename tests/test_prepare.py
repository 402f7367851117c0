import re
import subprocess

import numpy as np
import pytest

from competition_data import BAD_INPUTS, competition_files, corrupt, csv_text
from src import config
from src.competition_csv import DataError
from src.prepare import main, prepare, split
from workdir import ROOT, make_workdir, run_module, set_param

SETTINGS = config.Prepare(val_fraction=0.25, seed=0)


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
    (x_train, y_train), (x_val, y_val) = split(images, labels, 0.25, seed=3)
    assert np.bincount(y_val).tolist() == [5] * 10
    assert sorted(np.concatenate([x_train, x_val]).ravel()) == list(range(200))
    assert np.array_equal(split(images, labels, 0.25, seed=3)[1][0], x_val)
    assert not np.array_equal(split(images, labels, 0.25, seed=4)[1][0], x_val)


def test_prepare_writes_the_three_splits(tmp_path):
    raw = competition_files(tmp_path / "raw", train_rows=50, test_rows=20)
    prepare(raw, tmp_path / "prepared", config.Prepare(val_fraction=0.2, seed=0))
    train, val, test = (np.load(tmp_path / "prepared" / f"{name}.npz") for name in ("train", "val", "test"))
    assert train["x"].shape == (40, 28, 28, 1) and val["x"].shape == (10, 28, 28, 1)
    assert test["x"].shape == (20, 28, 28, 1) and "y" not in test
    assert train["x"].dtype == np.uint8 and train["y"].dtype == np.uint8


def test_prepare_splits_as_its_settings_say(tmp_path):
    raw = competition_files(tmp_path / "raw", train_rows=100, test_rows=20)

    def validation(settings):
        prepare(raw, tmp_path / "prepared", settings)
        return np.load(tmp_path / "prepared" / "val.npz")["x"]

    assert len(validation(config.Prepare(val_fraction=0.3, seed=0))) == 30
    assert np.array_equal(
        validation(config.Prepare(val_fraction=0.3, seed=0)), validation(config.Prepare(val_fraction=0.3, seed=0))
    )
    assert not np.array_equal(
        validation(config.Prepare(val_fraction=0.3, seed=1)), validation(config.Prepare(val_fraction=0.3, seed=0))
    )


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
    assert capsys.readouterr().out == "prepare: 70 train, 30 val, 20 test digits -> prepared\n"
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
