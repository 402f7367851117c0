"""The ensemble's inference: each member's softmax over a set of images, batched, with test-time
augmentation, in the chosen precision; the ensemble's is their mean."""

import zipfile
from pathlib import Path

import keras
import numpy as np

from . import augmentation  # noqa: F401  (registers the layers that saved members hold, for load_model)
from .device_policy import in_precision
from .stage_process import UserError


def member_paths(members_dir, ensemble):
    """The models of the ensemble that `ensemble` (config.Ensemble) describes, as the train stages write them."""
    paths = [Path(members_dir) / f"{variant}-{seed}.keras" for variant, seed in ensemble.members]
    missing = [str(path) for path in paths if not path.exists()]
    if missing:
        raise UserError(f"no trained member {', '.join(missing)}; `dvc repro` trains it")
    return paths


def member_probabilities(model_paths, images, batch_size, tta_shift=0, policy="float32"):
    """Each member's softmax outputs, (members, N, 10); the ensemble's are their mean over axis 0.

    The members compute in the Keras dtype policy `policy` (see device_policy.precision_policy),
    whatever they trained in. With tta_shift, each member's are its mean over the images as
    given and moved tta_shift pixels up, down, left and right (test-time augmentation).
    """
    views = [shifted(images, dy, dx) for dy, dx in tta_offsets(tta_shift)]
    members = []
    for path in model_paths:
        model = in_precision(load_member(path), policy)
        members.append(np.mean([softmax_in_batches(model, view, batch_size) for view in views], axis=0))
    return np.stack(members)


def load_member(path):
    """The Keras model saved at path; a UserError where the file is not a whole .keras archive."""
    try:
        return keras.models.load_model(path, compile=False)  # for inference: no loss or optimizer
    except (ValueError, OSError, KeyError, zipfile.BadZipFile) as error:
        raise UserError(
            f"{path}: not a readable Keras model ({type(error).__name__}: truncated or damaged?); "
            f"`dvc repro --force -s train@{Path(path).stem}` trains it again"
        ) from None


def softmax_in_batches(model, images, batch_size):
    """model's outputs for images, a batch at a time.

    predict_on_batch, not predict: predict's tf.data thread competes with the convolutions
    for the cores, which on a 2-core machine made inference about twice as slow every other run.
    A short last batch is padded to the others' size: a batch of a new shape traces the step again.
    """
    batch_size = min(batch_size, len(images))
    outputs = []
    for start in range(0, len(images), batch_size):
        batch = images[start : start + batch_size]
        short = batch_size - len(batch)
        if short:
            batch = np.pad(batch, [(0, short)] + [(0, 0)] * (batch.ndim - 1))
        outputs.append(model.predict_on_batch(batch)[: batch_size - short])
    return np.concatenate(outputs)


def tta_offsets(tta_shift):
    """The (dy, dx) moves that test-time augmentation averages over: the images as given, and with tta_shift
    also moved that many pixels up, down, left and right."""
    if not tta_shift:
        return [(0, 0)]
    return [(0, 0), (-tta_shift, 0), (tta_shift, 0), (0, -tta_shift), (0, tta_shift)]


def shifted(images, dy, dx):
    """(N, H, W, C) images moved dy pixels down and dx right (negative: up, left), filled with 0 (background)."""
    pad = max(abs(dy), abs(dx))
    padded = np.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    height, width = images.shape[1:3]
    return padded[:, pad - dy : pad - dy + height, pad - dx : pad - dx + width]
