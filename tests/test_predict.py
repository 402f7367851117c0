import hashlib
import json

import keras
import numpy as np
import pandas as pd
import pytest

from competition_data import csv_text
from src.predict import member_paths, member_probabilities, predict, shifted
from src.prepare import DataError


def sample_submission(path, rows):
    path.write_text(csv_text(["ImageId", "Label"], [(i, 0) for i in range(1, rows + 1)], newline="\r\n"))
    return path


def test_submission_is_kaggle_ready(trained_model, prepared_dir, tmp_path):
    sample = sample_submission(tmp_path / "sample_submission.csv", 100)
    out = tmp_path / "submissions" / "submission.csv"
    predict([trained_model], prepared_dir / "test.npz", sample, "kaggle", out, batch_size=32)
    assert out.read_text().splitlines()[0] == "ImageId,Label"
    submission = pd.read_csv(out)
    assert submission.ImageId.tolist() == list(range(1, 101))
    images = np.load(prepared_dir / "test.npz")["x"]
    expected = keras.models.load_model(trained_model).predict(images, verbose=0).argmax(axis=1)
    assert submission.Label.tolist() == expected.tolist()


def test_a_submission_that_disagrees_with_the_sample_is_not_written(trained_model, prepared_dir, tmp_path):
    sample = sample_submission(tmp_path / "sample_submission.csv", 99)
    out = tmp_path / "submission.csv"
    out.write_text("the user's previous file")
    with pytest.raises(DataError, match=rf"^{out}: line 101, column 1 \(ImageId\): 100 rows, expected 99"):
        predict([trained_model], prepared_dir / "test.npz", sample, "sample", out, batch_size=32)
    assert out.read_text() == "the user's previous file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sample_submission.csv", "submission.csv"]


@pytest.mark.parametrize("source", ["sample", "kaggle"])
def test_the_sidecar_records_the_source_rows_and_digest_of_the_file(trained_model, prepared_dir, tmp_path, source):
    sample = sample_submission(tmp_path / "sample_submission.csv", 100)
    out = tmp_path / "submissions" / "submission.csv"
    predict([trained_model], prepared_dir / "test.npz", sample, source, out, batch_size=32)
    sidecar = json.loads((tmp_path / "submissions" / "submission.json").read_text())
    assert sidecar == {"source": source, "rows": 100, "sha256": hashlib.sha256(out.read_bytes()).hexdigest()}
    assert sorted(p.name for p in out.parent.iterdir()) == ["submission.csv", "submission.json"]  # no temporary left


def test_an_ensemble_averages_its_members_softmax(trained_model, second_member, prepared_dir, tmp_path):
    sample = sample_submission(tmp_path / "sample_submission.csv", 100)
    out = tmp_path / "submission.csv"
    predict([trained_model, second_member], prepared_dir / "test.npz", sample, "sample", out, batch_size=32)
    images = np.load(prepared_dir / "test.npz")["x"]
    members = [keras.models.load_model(path).predict(images, verbose=0) for path in (trained_model, second_member)]
    expected = ((members[0] + members[1]) / 2).argmax(axis=1)
    assert pd.read_csv(out).Label.tolist() == expected.tolist()
    # Not a vote that one member decides: the ensemble differs from each member somewhere.
    assert all((member.argmax(axis=1) != expected).any() for member in members)


def test_member_paths_follow_the_variants_and_seeds_and_name_a_missing_member(tmp_path):
    for member in ("base-1", "base-2", "slant-1", "slant-2"):
        (tmp_path / f"{member}.keras").write_bytes(b"")
    assert member_paths(tmp_path, {"variants": ["slant", "base"], "seeds": [2, 1]}) == [
        tmp_path / "slant-2.keras", tmp_path / "slant-1.keras", tmp_path / "base-2.keras", tmp_path / "base-1.keras"]
    with pytest.raises(FileNotFoundError, match=rf"no trained member {tmp_path}/base-3.keras; `dvc repro` trains it"):
        member_paths(tmp_path, {"variants": ["base"], "seeds": [1, 3]})


def test_shifted_moves_the_digit_and_fills_with_background():
    images = np.zeros((1, 4, 4, 1), np.uint8)
    images[0, 1, 2, 0] = 255
    assert np.argwhere(shifted(images, 1, 0)[0, :, :, 0]).tolist() == [[2, 2]]  # down
    assert np.argwhere(shifted(images, 0, -2)[0, :, :, 0]).tolist() == [[1, 0]]  # left
    assert not shifted(images, -2, 0).any()  # moved off the top: nothing wraps round
    assert shifted(images, 1, 0).shape == images.shape


def test_test_time_augmentation_averages_each_member_over_five_views(trained_model, prepared_dir):
    images = np.load(prepared_dir / "test.npz")["x"]
    model = keras.models.load_model(trained_model)
    views = [shifted(images, dy, dx) for dy, dx in ((0, 0), (-1, 0), (1, 0), (0, -1), (0, 1))]
    expected = np.mean([model.predict(view, verbose=0) for view in views], axis=0)
    augmented = member_probabilities([trained_model], images, 32, tta_shift=1)
    assert augmented.shape == (1, len(images), 10)
    np.testing.assert_allclose(augmented[0], expected, atol=1e-6)
    assert not np.allclose(augmented, member_probabilities([trained_model], images, 32))


def test_the_members_predict_in_the_policy_asked_for(trained_model, prepared_dir):
    images = np.load(prepared_dir / "test.npz")["x"]
    saved = trained_model.read_bytes()
    in_float32 = member_probabilities([trained_model], images, 32)
    in_bfloat16 = member_probabilities([trained_model], images, 32, policy="mixed_bfloat16")
    expected = keras.models.load_model(trained_model).predict(images, verbose=0)  # trained in float32
    np.testing.assert_allclose(in_float32[0], expected, atol=1e-6)
    assert not np.array_equal(in_bfloat16, in_float32)
    np.testing.assert_allclose(in_bfloat16, in_float32, atol=0.05)
    assert trained_model.read_bytes() == saved  # the member on disk is left as it trained
