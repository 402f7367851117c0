import re

import numpy as np
import pytest

from competition_data import BAD_INPUTS, competition_files, csv_text
from src.competition_csv import (
    SUBMISSION_HEADER,
    TEST_HEADER,
    DataError,
    read_submission,
    read_test,
    read_train,
    write_csv,
)


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


def read_competition_files(raw):
    """Read and check raw's three files, as the prepare stage does: sample_submission.csv has a row per test image."""
    read_train(raw / "train.csv")
    test_images = read_test(raw / "test.csv")
    read_submission(raw / "sample_submission.csv", rows=len(test_images))


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_is_one_line_naming_the_file_line_and_column(tmp_path, case):
    name, damage, message = BAD_INPUTS[case]
    raw = competition_files(tmp_path / "raw", train_rows=40, test_rows=20)
    damage(raw / name)
    with pytest.raises(DataError) as raised:
        read_competition_files(raw)
    text = str(raised.value)
    assert "\n" not in text
    assert re.match(re.escape(f"{raw}/") + message, text), text


def test_the_submission_rows_are_checked_only_when_asked(tmp_path):
    path = tmp_path / "submission.csv"
    path.write_text(csv_text(SUBMISSION_HEADER, [(i, i % 10) for i in range(1, 6)]))
    assert read_submission(path).tolist() == [[i, i % 10] for i in range(1, 6)]
    with pytest.raises(DataError, match=r"submission.csv: line 7, column 1 \(ImageId\): 5 rows, expected 6"):
        read_submission(path, rows=6)


def test_write_csv_writes_what_the_readers_read_with_kaggles_line_ends(tmp_path):
    rows = np.column_stack([np.arange(1, 4), [7, 0, 9]])
    write_csv(tmp_path / "s.csv", SUBMISSION_HEADER, rows)
    assert (tmp_path / "s.csv").read_bytes() == b"ImageId,Label\r\n1,7\r\n2,0\r\n3,9\r\n"
    assert np.array_equal(read_submission(tmp_path / "s.csv", rows=3), rows)
