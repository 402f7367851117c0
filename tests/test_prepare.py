import numpy as np
import pytest

from competition_data import competition_files, csv_text
from src.prepare import DataError, TEST_HEADER, prepare, read_submission, read_test, read_train, split


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


@pytest.mark.parametrize(
    "line, column, value, message",
    [
        (5, 3, "abc", r"train.csv: line 5, column 3 \(pixel1\): 'abc' is not an integer"),
        (7, 10, "1.5", r"line 7, column 10 \(pixel8\): '1.5' is not an integer"),
        (4, 2, "", r"line 4, column 2 \(pixel0\): empty cell"),
        (3, 785, "256", r"line 3, column 785 \(pixel783\): 256 is outside 0..255"),
        (6, 100, "-1", r"line 6, column 100 \(pixel98\): -1 is outside 0..255"),
        (2, 1, "10", r"line 2, column 1 \(label\): 10 is outside 0..9"),
        (1, 2, "pixel1", r"line 1, column 2: header has 'pixel1' where 'pixel0' belongs"),
    ],
)
def test_bad_cells_are_named_by_file_line_and_column(tmp_path, line, column, value, message):
    competition_files(tmp_path)
    corrupt(tmp_path / "train.csv", line, column, value)
    with pytest.raises(DataError, match=message):
        read_train(tmp_path / "train.csv")


def test_short_row_is_named(tmp_path):
    competition_files(tmp_path)
    path = tmp_path / "train.csv"
    lines = path.read_text().splitlines()
    lines[8] = lines[8].rsplit(",", 1)[0]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"line 9, column 785: row has 784 columns, expected 785"):
        read_train(path)


def test_empty_file_and_header_only(tmp_path):
    (tmp_path / "test.csv").write_text("")
    with pytest.raises(DataError, match=r"test.csv: line 1, column 1: the file is empty"):
        read_test(tmp_path / "test.csv")
    (tmp_path / "test.csv").write_text(",".join(TEST_HEADER) + "\n")
    with pytest.raises(DataError, match=r"test.csv: line 2: the file has a header but no rows"):
        read_test(tmp_path / "test.csv")


def test_sample_submission_must_match_the_test_rows(tmp_path):
    competition_files(tmp_path, test_rows=20)
    with pytest.raises(DataError, match=r"sample_submission.csv: line 22, column 1 \(ImageId\): 20 rows, expected 21"):
        read_submission(tmp_path / "sample_submission.csv", rows=21)
    corrupt(tmp_path / "sample_submission.csv", 3, 1, "7")
    with pytest.raises(DataError, match=r"line 3, column 1 \(ImageId\): 7, expected 2"):
        read_submission(tmp_path / "sample_submission.csv")


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


def test_prepare_writes_nothing_when_an_input_is_bad(tmp_path):
    raw = competition_files(tmp_path / "raw")
    corrupt(raw / "test.csv", 5, 1, "x")
    with pytest.raises(DataError, match="test.csv: line 5, column 1"):
        prepare(raw, tmp_path / "prepared", val_fraction=0.25, seed=0)
    assert not (tmp_path / "prepared").exists()
