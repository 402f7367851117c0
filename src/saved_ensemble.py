"""The ensemble as one TensorFlow SavedModel: its `serve` signature takes uint8 images (N, 28, 28, 1) and gives
the ensemble's probabilities (N, 10) float32, the members' softmax averaged over the test-time augmentation's
views and over the members, as ensemble.member_probabilities computes them. It loads with
`tf.saved_model.load` alone: the members' layers are traced into it, none of this project's code is needed."""

import keras
import tensorflow as tf

from .device_policy import in_precision
from .ensemble import load_member, tta_offsets
from .stage_process import UserError

IMAGES = tf.TensorSpec([None, 28, 28, 1], tf.uint8, name="images")


def write_saved_ensemble(model_paths, saved_model_dir, tta_shift=0):
    """Write the ensemble of the members at model_paths, with test-time augmentation if tta_shift, as a SavedModel
    folder at saved_model_dir (atomic.atomic_dir makes one that lands whole or not at all). It computes in float32,
    whatever the members trained in: the exported model runs at full speed on any machine, 16-bit arithmetic or not."""
    members = [in_precision(load_member(path), "float32") for path in model_paths]
    offsets = tta_offsets(tta_shift)

    def serve(images):  # (N, 28, 28, 1) uint8
        views = [shifted(images, dy, dx) for dy, dx in offsets]
        each_member = [tf.reduce_mean([member(view, training=False) for view in views], axis=0) for member in members]
        return tf.reduce_mean(each_member, axis=0)  # (N, 10)

    archive = keras.export.ExportArchive()
    for member in members:
        archive.track(member)
    archive.add_endpoint("serve", serve, input_signature=[IMAGES])
    archive.write_out(str(saved_model_dir), verbose=False)


def shifted(images, dy, dx):
    """ensemble.shifted in TensorFlow: (N, H, W, C) images moved dy pixels down and dx right, filled with 0."""
    pad = max(abs(dy), abs(dx))
    padded = tf.pad(images, [[0, 0], [pad, pad], [pad, pad], [0, 0]])
    height, width = images.shape[1:3]
    return padded[:, pad - dy : pad - dy + height, pad - dx : pad - dx + width]


def load_saved_ensemble(saved_model_dir):
    """The `serve` function of the SavedModel at saved_model_dir, as NumPy: uint8 images (N, 28, 28, 1) to
    probabilities (N, 10); a UserError where the folder holds none."""
    try:
        loaded = tf.saved_model.load(str(saved_model_dir))
    except (OSError, ValueError) as error:
        raise UserError(
            f"{saved_model_dir}: not a readable SavedModel ({type(error).__name__}); `dvc repro export` writes it"
        ) from None
    if not hasattr(loaded, "serve"):
        raise UserError(f"{saved_model_dir}: a SavedModel without a `serve` function; `dvc repro export` writes one")
    return lambda images: loaded.serve(tf.constant(images, tf.uint8)).numpy()
