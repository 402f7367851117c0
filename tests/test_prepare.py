import gzip
import re
import zipfile

import numpy as np
import pytest

from competition_data import competition_files, csv_text
from src.prepare import DataError, TEST_HEADER, main, prepare, read_test, read_train, split
from workdir import make_workdir, run_module


def test_reads_train_as_uint8_images_and_labels(tmp_path):
    competition_files(tmp_path, train_rows=30)
    images, labels = read_train(tmp_path / "train.csv")
    assert images.shape == (30, 28, 28, 1) and images.dtype == np.uint8
    assert labels.tolist() == [i % 10 for i in range(30)]


def test_pixels_keep_row_major_order(tmp_path):
    row = np.arange(784) % 256
    (tmp_path / "test.csv").write_text(csv_text(TEST_HEADER, [row]))
    image = read_test(tmp_path / "test.csv")[0, :, :, 0]
    assert image[0, 1] == 1 and image[1, 0] == 28 and image[27, 27] == 783 % 256


@pytest.mark.parametrize("variant", ["crlf", "no final newline", "bom"])
def test_accepts_the_valid_variants(tmp_path, variant):
    competition_files(tmp_path, newline="\r\n" if variant == "crlf" else "\n")
    path = tmp_path / "test.csv"
    data = path.read_bytes()
    if variant == "no final newline":
        data = data.rstrip(b"\n")
    if variant == "bom":
        data = b"\xef\xbb\xbf" + data
    path.write_bytes(data)
    assert read_test(path).shape == (20, 28, 28, 1)


def corrupt(path, line, column, value):
    """Set the cell at a 1-based line and column of a CSV file."""
    lines = path.read_text().splitlines()
    cells = lines[line - 1].split(",")
    cells[column - 1] = value
    lines[line - 1] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")


def edit_lines(path, edit):
    """Rewrite a CSV file through edit(list of lines) -> list of lines."""
    path.write_text("\n".join(edit(path.read_text().splitlines())) + "\n")


def drop_last_column(lines):
    return [line.rsplit(",", 1)[0] for line in lines]


def add_column(lines):
    return [lines[0] + ",extra"] + [line + ",0" for line in lines[1:]]


def swap_first_pixels(lines):
    names = lines[0].split(",")
    names[1], names[2] = names[2], names[1]
    return [",".join(names)] + lines[1:]


def truncate_last_line(path):
    data = path.read_bytes().rstrip(b"\n")
    path.write_bytes(data[: data.rindex(b"\n") + 1 + 900])  # the last row cut off mid-way, no final newline


def gzip_file(path):
    path.write_bytes(gzip.compress(path.read_bytes()))


def zip_file(path):
    archive = path.with_suffix(".zip")
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(path, path.name)
    archive.replace(path)


def add_label_column(path):
    lines = path.read_text().splitlines()
    path.write_text("\n".join(["label," + lines[0]] + ["3," + line for line in lines[1:]]) + "\n")


GARBAGE = bytes(range(128, 256)) * 8  # not UTF-8 anywhere


# (file to break, how, what the one error line must say). Each names the file, the line and the column.
BAD_INPUTS = {
    "empty file": ("train.csv", lambda p: p.write_bytes(b""), r"train.csv: line 1, column 1: the file is empty"),
    "header only": ("test.csv", lambda p: edit_lines(p, lambda ls: ls[:1]),
                    r"test.csv: line 2, column 1: the file has a header but no rows"),
    "wrong header name": ("train.csv", lambda p: corrupt(p, 1, 1, "Label"),
                          r"train.csv: line 1, column 1: header has 'Label' where 'label' belongs"),
    "wrong header order": ("test.csv", lambda p: edit_lines(p, swap_first_pixels),
                           r"test.csv: line 1, column 2: header has 'pixel2' where 'pixel1' belongs"),
    "missing column": ("train.csv", lambda p: edit_lines(p, drop_last_column),
                       r"train.csv: line 1, column 785: header has 784 columns, expected 785"),
    "extra column": ("train.csv", lambda p: edit_lines(p, add_column),
                     r"train.csv: line 1, column 786: header has 786 columns, expected 785"),
    "short row": ("train.csv", lambda p: edit_lines(p, lambda ls: ls[:8] + drop_last_column(ls[8:9]) + ls[9:]),
                  r"train.csv: line 9, column 785: row has 784 columns, expected 785"),
    "long row": ("test.csv", lambda p: edit_lines(p, lambda ls: ls[:3] + [ls[3] + ",7"] + ls[4:]),
                 r"test.csv: line 4, column 785: row has 785 columns, expected 784"),
    "not an integer": ("train.csv", lambda p: corrupt(p, 5, 3, "abc"),
                       r"train.csv: line 5, column 3 \(pixel1\): 'abc' is not an integer"),
    "a float": ("train.csv", lambda p: corrupt(p, 7, 10, "1.5"),
                r"train.csv: line 7, column 10 \(pixel8\): '1.5' is not an integer"),
    "a negative": ("test.csv", lambda p: corrupt(p, 6, 100, "-1"),
                   r"test.csv: line 6, column 100 \(pixel99\): -1 is outside 0..255"),
    "above 255": ("train.csv", lambda p: corrupt(p, 3, 785, "256"),
                  r"train.csv: line 3, column 785 \(pixel783\): 256 is outside 0..255"),
    "beyond int32": ("test.csv", lambda p: corrupt(p, 2, 5, "99999999999"),
                     r"test.csv: line 2, column 5 \(pixel4\): 99999999999 is outside 0..255"),
    "label 10": ("train.csv", lambda p: corrupt(p, 2, 1, "10"),
                 r"train.csv: line 2, column 1 \(label\): 10 is outside 0..9"),
    "label -1": ("train.csv", lambda p: corrupt(p, 12, 1, "-1"),
                 r"train.csv: line 12, column 1 \(label\): -1 is outside 0..9"),
    "empty cell": ("train.csv", lambda p: corrupt(p, 4, 2, ""),
                   r"train.csv: line 4, column 2 \(pixel0\): empty cell"),
    "NUL bytes": ("test.csv", lambda p: corrupt(p, 3, 4, "\0\0"),
                  r"test.csv: line 3, column 4 \(pixel3\): '\\x00\\x00' is not an integer"),
    "binary garbage": ("train.csv", lambda p: p.write_bytes(GARBAGE),
                       r"train.csv: line 1, column 1: not UTF-8 text; is it a binary or compressed file\?"),
    "binary garbage after good rows": ("test.csv", lambda p: p.write_bytes(p.read_bytes() + b"1,2," + GARBAGE),
                                       r"test.csv: line 22, column 3: not UTF-8 text"),
    "a gzip file": ("train.csv", gzip_file, r"train.csv: line 1, column 1: this is a gzip file: decompress it first"),
    "a zip file": ("test.csv", zip_file, r"test.csv: line 1, column 1: this is a zip archive: extract it first"),
    "truncated last line": ("train.csv", truncate_last_line,
                            r"train.csv: line 41, column \d+: row has \d+ columns, expected 785"),
    "test.csv with a label column": ("test.csv", add_label_column,
                                     r"test.csv: line 1, column 1: a 'label' column, but this file must have no "
                                     r"labels"),
    "test rows disagree with sample_submission": (
        "test.csv", lambda p: edit_lines(p, lambda ls: ls[:-1]),
        r"sample_submission.csv: line 21, column 1 \(ImageId\): 20 rows, expected 19, one per test image"),
    "sample_submission ids out of order": ("sample_submission.csv", lambda p: corrupt(p, 3, 1, "7"),
                                           r"sample_submission.csv: line 3, column 1 \(ImageId\): 7, expected 2"),
    "duplicated header line": ("train.csv", lambda p: edit_lines(p, lambda ls: ls[:1] + ls),
                               r"train.csv: line 2, column 1: the header again; remove the repeated header line"),
}


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
    assert result.stderr == "prepare: error: raw/train.csv: line 5, column 3 (pixel1): 'abc' is not an integer\n"
    assert not (tmp_path / "prepared").exists()


def test_bad_input_leaves_the_previous_outputs_intact(tmp_path):
    raw = competition_files(tmp_path / "raw")
    prepare(raw, tmp_path / "prepared", val_fraction=0.25, seed=0)
    before = {p.name: p.read_bytes() for p in (tmp_path / "prepared").iterdir()}
    corrupt(raw / "test.csv", 5, 1, "x")
    with pytest.raises(DataError, match="test.csv: line 5, column 1"):
        prepare(raw, tmp_path / "prepared", val_fraction=0.25, seed=0)
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
    prepare(raw, tmp_path / "prepared", val_fraction=0.2, seed=0)
    train, val, test = (np.load(tmp_path / "prepared" / f"{name}.npz") for name in ("train", "val", "test"))
    assert train["x"].shape == (40, 28, 28, 1) and val["x"].shape == (10, 28, 28, 1)
    assert test["x"].shape == (20, 28, 28, 1) and "y" not in test
    assert train["x"].dtype == np.uint8 and train["y"].dtype == np.uint8


def test_prepare_keeps_the_sample_test_labels(tmp_path):
    raw = competition_files(tmp_path / "raw", test_rows=20)
    (raw / "test_labels.csv").write_text(csv_text(["ImageId", "Label"], [(i, i % 10) for i in range(1, 21)]))
    prepare(raw, tmp_path / "prepared", val_fraction=0.25, seed=0)
    assert np.load(tmp_path / "prepared" / "test.npz")["y"].tolist() == [i % 10 for i in range(1, 21)]
