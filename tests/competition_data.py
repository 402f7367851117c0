"""Small competition-shaped files for tests."""

import gzip
import io
import zipfile
from pathlib import Path

import numpy as np

from src.competition_csv import TEST_HEADER, TRAIN_HEADER


def digits(rows, seed=0):
    """Random (images, labels) with every class present, for tests that need no real digits."""
    rng = np.random.default_rng(seed)
    labels = np.arange(rows) % 10
    images = rng.integers(0, 256, (rows, 28, 28, 1), dtype=np.uint8)
    return images, labels.astype(np.uint8)


def csv_text(header, rows, newline="\n"):
    return newline.join([",".join(header)] + [",".join(map(str, row)) for row in rows]) + newline


def competition_files(directory, train_rows=40, test_rows=20, newline="\n"):
    """Write small, valid train.csv, test.csv and sample_submission.csv into directory."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    images, labels = digits(train_rows)
    train = np.column_stack([labels, images.reshape(train_rows, -1)])
    (directory / "train.csv").write_text(csv_text(TRAIN_HEADER, train, newline), newline="")
    test = digits(test_rows, seed=1)[0].reshape(test_rows, -1)
    (directory / "test.csv").write_text(csv_text(TEST_HEADER, test, newline), newline="")
    sample = [(i, 0) for i in range(1, test_rows + 1)]
    (directory / "sample_submission.csv").write_text(csv_text(["ImageId", "Label"], sample, newline), newline="")
    return directory


def zip_of(directory, names=("train.csv", "test.csv", "sample_submission.csv")):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in names:
            archive.write(Path(directory) / name, name)
    return buffer.getvalue()


# -- broken files: each way the competition's CSVs can break, and the one line that must say so ----------------------


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


# (file of competition_files(directory, train_rows=40, test_rows=20) to break, how, the regex that the one error line
# must match after the path of the directory). Each names the file, the line and the column.
BAD_INPUTS = {
    "empty file": ("train.csv", lambda p: p.write_bytes(b""), r"train.csv: line 1, column 1: the file is empty"),
    "header only": (
        "test.csv",
        lambda p: edit_lines(p, lambda ls: ls[:1]),
        r"test.csv: line 2, column 1: the file has a header but no rows",
    ),
    "wrong header name": (
        "train.csv",
        lambda p: corrupt(p, 1, 1, "Label"),
        r"train.csv: line 1, column 1: header has 'Label' where 'label' belongs",
    ),
    "wrong header order": (
        "test.csv",
        lambda p: edit_lines(p, swap_first_pixels),
        r"test.csv: line 1, column 2: header has 'pixel2' where 'pixel1' belongs",
    ),
    "missing column": (
        "train.csv",
        lambda p: edit_lines(p, drop_last_column),
        r"train.csv: line 1, column 785: header has 784 columns, expected 785",
    ),
    "extra column": (
        "train.csv",
        lambda p: edit_lines(p, add_column),
        r"train.csv: line 1, column 786: header has 786 columns, expected 785",
    ),
    "short row": (
        "train.csv",
        lambda p: edit_lines(p, lambda ls: ls[:8] + drop_last_column(ls[8:9]) + ls[9:]),
        r"train.csv: line 9, column 785: row has 784 columns, expected 785",
    ),
    "long row": (
        "test.csv",
        lambda p: edit_lines(p, lambda ls: ls[:3] + [ls[3] + ",7"] + ls[4:]),
        r"test.csv: line 4, column 785: row has 785 columns, expected 784",
    ),
    "not an integer": (
        "train.csv",
        lambda p: corrupt(p, 5, 3, "abc"),
        r"train.csv: line 5, column 3 \(pixel1\): 'abc' is not a plain decimal integer",
    ),
    "a float": (
        "train.csv",
        lambda p: corrupt(p, 7, 10, "1.5"),
        r"train.csv: line 7, column 10 \(pixel8\): '1.5' is not a plain decimal integer",
    ),
    "a space before a number": (
        "train.csv",
        lambda p: corrupt(p, 8, 20, " 5"),
        r"train.csv: line 8, column 20 \(pixel18\): ' 5' is not a plain decimal integer",
    ),
    "a hexadecimal number": (
        "test.csv",
        lambda p: corrupt(p, 9, 300, "0x5"),
        r"test.csv: line 9, column 300 \(pixel299\): '0x5' is not a plain decimal integer",
    ),
    "a quoted number": (
        "train.csv",
        lambda p: corrupt(p, 10, 2, '"5"'),
        r"train.csv: line 10, column 2 \(pixel0\): '\"5\"' is not a plain decimal integer",
    ),
    "a negative": (
        "test.csv",
        lambda p: corrupt(p, 6, 100, "-1"),
        r"test.csv: line 6, column 100 \(pixel99\): -1 is outside 0..255",
    ),
    "above 255": (
        "train.csv",
        lambda p: corrupt(p, 3, 785, "256"),
        r"train.csv: line 3, column 785 \(pixel783\): 256 is outside 0..255",
    ),
    "beyond int32": (
        "test.csv",
        lambda p: corrupt(p, 2, 5, "99999999999"),
        r"test.csv: line 2, column 5 \(pixel4\): 99999999999 is outside 0..255",
    ),
    "label 10": (
        "train.csv",
        lambda p: corrupt(p, 2, 1, "10"),
        r"train.csv: line 2, column 1 \(label\): 10 is outside 0..9",
    ),
    "label -1": (
        "train.csv",
        lambda p: corrupt(p, 12, 1, "-1"),
        r"train.csv: line 12, column 1 \(label\): -1 is outside 0..9",
    ),
    "empty cell": ("train.csv", lambda p: corrupt(p, 4, 2, ""), r"train.csv: line 4, column 2 \(pixel0\): empty cell"),
    "NUL bytes": (
        "test.csv",
        lambda p: corrupt(p, 3, 4, "\0\0"),
        r"test.csv: line 3, column 4 \(pixel3\): '\\x00\\x00' is not a plain decimal integer",
    ),
    "binary garbage": (
        "train.csv",
        lambda p: p.write_bytes(GARBAGE),
        r"train.csv: line 1, column 1: not UTF-8 text; is it a binary or compressed file\?",
    ),
    "binary garbage after good rows": (
        "test.csv",
        lambda p: p.write_bytes(p.read_bytes() + b"1,2," + GARBAGE),
        r"test.csv: line 22, column 3: not UTF-8 text",
    ),
    "a gzip file": ("train.csv", gzip_file, r"train.csv: line 1, column 1: this is a gzip file: decompress it first"),
    "a zip file": ("test.csv", zip_file, r"test.csv: line 1, column 1: this is a zip archive: extract it first"),
    "truncated last line": (
        "train.csv",
        truncate_last_line,
        r"train.csv: line 41, column \d+: row has \d+ columns, expected 785",
    ),
    "test.csv with a label column": (
        "test.csv",
        add_label_column,
        r"test.csv: line 1, column 1: a 'label' column, but this file must have no "
        r"labels",
    ),
    "test rows disagree with sample_submission": (
        "test.csv",
        lambda p: edit_lines(p, lambda ls: ls[:-1]),
        r"sample_submission.csv: line 21, column 1 \(ImageId\): 20 rows, expected 19, one per test image",
    ),
    "sample_submission ids out of order": (
        "sample_submission.csv",
        lambda p: corrupt(p, 3, 1, "7"),
        r"sample_submission.csv: line 3, column 1 \(ImageId\): 7, expected 2",
    ),
    "duplicated header line": (
        "train.csv",
        lambda p: edit_lines(p, lambda ls: ls[:1] + ls),
        r"train.csv: line 2, column 1: the header again; remove the repeated header line",
    ),
}
