"""The exported ensemble as ONNX: the SavedModel's `serve` converted by tf2onnx, and checked with onnxruntime
against TensorFlow before it is written. Input `images` uint8 (N, 28, 28, 1), output probabilities (N, 10)."""

import numpy as np
import onnxruntime
import tensorflow as tf
import tf2onnx

from .saved_ensemble import IMAGES

OPSET = 17  # onnxruntime 1.17 and later run it


def write_onnx(saved_model_dir, onnx_path):
    """Write the SavedModel at saved_model_dir as an ONNX file at onnx_path; a bug in the conversion (outputs
    that differ from TensorFlow's) raises before anything is written."""
    saved = tf.saved_model.load(str(saved_model_dir))
    model, _ = tf2onnx.convert.from_function(saved.serve, input_signature=[IMAGES], opset=OPSET)
    serialized = model.SerializeToString()
    # Sparse strokes of random brightness: digit-like inputs whose outputs are not all one saturated class.
    rng = np.random.default_rng(0)
    probe = (rng.integers(0, 256, (32, 28, 28, 1)) * (rng.random((32, 28, 28, 1)) < 0.2)).astype(np.uint8)
    converted = onnxruntime.InferenceSession(serialized).run(None, {"images": probe})[0]
    np.testing.assert_allclose(converted, saved.serve(tf.constant(probe)).numpy(), atol=1e-5)
    with open(onnx_path, "wb") as file:
        file.write(serialized)
