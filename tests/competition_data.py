"""Small competition-shaped files for tests."""

import io
import zipfile
from pathlib import Path

import numpy as np

from src.prepare import TEST_HEADER, TRAIN_HEADER


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
