import subprocess
import sys

import numpy as np
import onnxruntime
import pandas as pd

from competition_data import csv_text
from src.ensemble import member_probabilities
from src.ensemble_onnx import write_onnx
from src.predict import predict
from src.saved_ensemble import write_saved_ensemble

# Run in a fresh process with none of this project's code importable: TensorFlow alone loads the model.
LOAD_AND_SERVE = """
import sys
import numpy as np
import tensorflow as tf
images = np.load(sys.argv[1])["x"]
for path in sys.argv[2:]:
    model = tf.saved_model.load(path)  # held: its functions only weakly reference its variables
    np.save(path + ".npy", model.serve(tf.constant(images)).numpy())
assert not [name for name in sys.modules if name == "src" or name.startswith("src.")]
"""


def test_the_saved_model_alone_and_its_onnx_label_as_predict_does(trained_model, second_member, prepared_dir, tmp_path):
    members, test = [trained_model, second_member], prepared_dir / "test.npz"
    sample = tmp_path / "sample_submission.csv"
    sample.write_text(csv_text(["ImageId", "Label"], [(i, 0) for i in range(1, 101)]))
    tta_shifts = (0, 1)
    for tta_shift in tta_shifts:
        write_saved_ensemble(members, tmp_path / f"ensemble{tta_shift}", tta_shift)
    served = subprocess.run(
        [sys.executable, "-c", LOAD_AND_SERVE, test, *(tmp_path / f"ensemble{shift}" for shift in tta_shifts)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert served.returncode == 0, served.stderr
    images = np.load(test)["x"]
    for tta_shift in tta_shifts:
        probabilities = np.load(tmp_path / f"ensemble{tta_shift}.npy")  # (100, 10)
        assert probabilities.shape == (100, 10) and probabilities.dtype == np.float32
        predict(members, test, sample, "sample", tmp_path / "submission.csv", 32, tta_shift)
        assert probabilities.argmax(axis=1).tolist() == pd.read_csv(tmp_path / "submission.csv").Label.tolist()
        expected = member_probabilities(members, images, 32, tta_shift).mean(axis=0)
        np.testing.assert_allclose(probabilities, expected, atol=1e-5)
    assert not np.allclose(np.load(tmp_path / "ensemble0.npy"), np.load(tmp_path / "ensemble1.npy"))

    write_onnx(tmp_path / "ensemble1", tmp_path / "ensemble1.onnx")  # the last predict's tta_shift, 1
    converted = onnxruntime.InferenceSession(tmp_path / "ensemble1.onnx").run(None, {"images": images})[0]
    assert converted.argmax(axis=1).tolist() == pd.read_csv(tmp_path / "submission.csv").Label.tolist()
    np.testing.assert_allclose(converted, np.load(tmp_path / "ensemble1.npy"), atol=1e-5)
