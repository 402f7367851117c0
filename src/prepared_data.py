"""The `prepare` stage's splits, read back: {"x": images (N, 28, 28, 1) uint8, "y": labels} per .npz file."""

import zipfile

import numpy as np

from .stage_process import UserError


def load_split(path):
    """The arrays in the .npz file at path, read whole; a UserError where the file is missing or damaged."""
    try:
        with np.load(path) as split:
            return {name: split[name] for name in split.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise UserError(
            f"{path}: not a readable NumPy archive ({type(error).__name__}: missing, truncated or damaged?); "
            f"`dvc repro --force -s prepare` writes it again"
        ) from None
