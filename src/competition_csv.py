"""The competition's CSV files: read and checked cell by cell, as images (N, 28, 28, 1) uint8 and labels."""

import re
from pathlib import Path

import numpy as np
import pyarrow
import pyarrow.csv

from .stage_process import UserError

PIXELS = [f"pixel{i}" for i in range(784)]
TRAIN_HEADER = ["label", *PIXELS]
TEST_HEADER = PIXELS
SUBMISSION_HEADER = ["ImageId", "Label"]
# Cells are plain decimal integers: digits, and a minus sign (which makes them out of range). Arrow
# alone would also take ' 5', '"5"' and '0x5'.
INTEGER = re.compile(r"-?[0-9]+")
CELL_BYTES = np.zeros(256, bool)
CELL_BYTES[np.frombuffer(b"0123456789-,\r\n", np.uint8)] = True


class DataError(UserError, ValueError):
    """An input file that breaks the competition's format. The message names the file, line and column."""


def read_int_csv(path, header, low, high):
    """Read a CSV of integers whose first line is exactly `header`.

    Column j must hold integers in low[j]..high[j]. Returns an array (rows, columns): uint8
    when every column's range fits in it, else int32. Raises DataError naming the file, line
    and column of the first problem.
    """
    path = Path(path)
    low, high = np.broadcast_to(low, len(header)), np.broadcast_to(high, len(header))
    dtype = np.uint8 if low.min() >= 0 and high.max() <= 255 else np.int32
    check_header(path, header)
    if not only_plain_integers(path):
        raise locate_bad_row(path, header, low, high) or DataError(f"{path}: a cell is not a plain decimal integer")
    try:
        table = pyarrow.csv.read_csv(
            path,
            read_options=pyarrow.csv.ReadOptions(skip_rows=1, column_names=header),
            # Empty cells must fail to parse rather than become nulls; so must a number that
            # overflows the type, which the rescan then reports as out of range.
            convert_options=pyarrow.csv.ConvertOptions(
                column_types={name: pyarrow.from_numpy_dtype(dtype) for name in header}, null_values=[]
            ),
        )
    except pyarrow.ArrowInvalid as error:
        # Arrow says what failed but not where: rescan slowly to name the line and column.
        raise locate_bad_row(path, header, low, high) or DataError(f"{path}: not a valid CSV: {error}") from None
    if table.num_rows == 0:
        raise DataError(f"{path}: line 2, column 1: the file has a header but no rows")
    # Filled a column at a time, each contiguous: much faster than writing 785 strided
    # columns into a row-major array. The rows are a transposed view; the callers' reshape
    # or copy makes them row-major in one pass.
    columns = np.empty((len(header), table.num_rows), dtype)
    for j, column in enumerate(table.columns):
        columns[j] = column.to_numpy()
    values = columns.T
    out_of_range = (values < low) | (values > high)
    if out_of_range.any():
        row, j = np.argwhere(out_of_range)[0]
        raise range_error(path, row + 2, j, values[row, j], header, low, high)
    return values


def only_plain_integers(path):
    """Whether every byte after the header is a digit, a minus sign, a comma or a line end."""
    data = np.fromfile(path, np.uint8)
    body = data[np.argmax(data == ord("\n")) + 1 :] if (data == ord("\n")).any() else data[:0]
    return bool(CELL_BYTES[body].all())


def range_error(path, line, j, value, header, low, high):
    return DataError(f"{path}: line {line}, column {j + 1} ({header[j]}): {value} is outside {low[j]}..{high[j]}")


# The first bytes of files that are often handed over in place of the CSV.
ARCHIVE_MAGIC = {b"\x1f\x8b": "a gzip file: decompress it first", b"PK\x03\x04": "a zip archive: extract it first"}


def check_header(path, header):
    with open(path, "rb") as file:
        first_line = file.readline()
    for magic, what in ARCHIVE_MAGIC.items():
        if first_line.startswith(magic):
            raise DataError(f"{path}: line 1, column 1: this is {what}")
    if not first_line:
        raise DataError(f"{path}: line 1, column 1: the file is empty; expected the header {describe(header)}")
    try:
        names = first_line.decode("utf-8-sig").rstrip("\r\n").split(",")
    except UnicodeDecodeError as error:
        raise not_text_error(path, 1, first_line, error) from None
    if names == ["label", *header]:
        raise DataError(
            f"{path}: line 1, column 1: a 'label' column, but this file must have no labels; "
            f"expected the header {describe(header)}"
        )
    for j, (found, expected) in enumerate(zip(names, header, strict=False)):
        if found != expected:
            raise DataError(
                f"{path}: line 1, column {j + 1}: header has {found!r} where {expected!r} belongs; "
                f"expected {describe(header)}"
            )
    if len(names) != len(header):
        raise DataError(
            f"{path}: line 1, column {min(len(names), len(header)) + 1}: header has {len(names)} "
            f"columns, expected {len(header)}: {describe(header)}"
        )


def describe(header):
    return ",".join(header) if len(header) < 5 else f"{header[0]},{header[1]},...,{header[-1]}"


def not_text_error(path, line, raw, error):
    column = raw[: error.start].count(b",") + 1
    return DataError(f"{path}: line {line}, column {column}: not UTF-8 text; is it a binary or compressed file?")


def locate_bad_row(path, header, low, high):
    """Return a DataError for the first row that is not len(header) integers in range, or None.

    The files hold plain integers, so a line split on commas is exact, and byte lines let
    binary garbage be placed to the column.
    """
    with open(path, "rb") as file:
        file.readline()  # the header, checked already
        for line, raw in enumerate(file, start=2):
            raw = raw.rstrip(b"\r\n")
            if not raw:
                continue  # blank lines are skipped by the fast reader too
            try:
                cells = raw.decode("utf-8").split(",")
            except UnicodeDecodeError as error:
                return not_text_error(path, line, raw, error)
            if cells == header:
                return DataError(f"{path}: line {line}, column 1: the header again; remove the repeated header line")
            if len(cells) != len(header):
                column = min(len(cells), len(header)) + 1
                return DataError(
                    f"{path}: line {line}, column {column}: row has {len(cells)} columns, expected {len(header)}"
                )
            for j, cell in enumerate(cells):
                if not INTEGER.fullmatch(cell):
                    problem = "empty cell" if cell == "" else f"{cell!r} is not a plain decimal integer"
                    return DataError(f"{path}: line {line}, column {j + 1} ({header[j]}): {problem}")
                if not low[j] <= int(cell) <= high[j]:
                    return range_error(path, line, j, int(cell), header, low, high)
    return None


def to_images(pixels):
    """(N, 784) uint8 pixel rows -> (N, 28, 28, 1) images, row-major as in the CSV."""
    return pixels.reshape(-1, 28, 28, 1)


def read_train(path):
    values = read_int_csv(path, TRAIN_HEADER, low=0, high=[9] + [255] * 784)
    return to_images(values[:, 1:]), values[:, 0].copy()


def read_test(path):
    return to_images(read_int_csv(path, TEST_HEADER, low=0, high=255))


def read_submission(path, rows=None):
    """A CSV shaped like sample_submission.csv: ImageId must run 1..N, and N must equal `rows` if given."""
    values = read_int_csv(path, SUBMISSION_HEADER, low=[1, 0], high=[np.iinfo(np.int32).max, 9])
    if rows is not None and len(values) != rows:
        raise DataError(
            f"{path}: line {min(len(values), rows) + 2}, column 1 (ImageId): "
            f"{len(values)} rows, expected {rows}, one per test image"
        )
    wrong = np.flatnonzero(values[:, 0] != np.arange(1, len(values) + 1))
    if wrong.size:
        row = wrong[0]
        raise DataError(f"{path}: line {row + 2}, column 1 (ImageId): {values[row, 0]}, expected {row + 1}")
    return values


def write_csv(path, header, rows):
    """Integer rows under `header`, with CRLF line ends, like the files Kaggle serves."""
    np.savetxt(path, rows, fmt="%d", delimiter=",", header=",".join(header), comments="", newline="\r\n")
