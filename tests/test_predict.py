import hashlib
import json

import keras
import numpy as np
import pandas as pd
import pytest

from competition_data import csv_text
from src.competition_csv import DataError
from src.predict import predict
from src.submission import values_sha256


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
    assert sidecar == {
        "source": source,
        "rows": 100,
        "sha256": hashlib.sha256(out.read_bytes()).hexdigest(),
        "values_sha256": values_sha256(out),
    }
    assert sorted(p.name for p in out.parent.iterdir()) == ["submission.csv", "submission.json"]  # no temporary left


def test_the_sidecar_records_what_made_the_file(trained_model, prepared_dir, tmp_path):
    sample = sample_submission(tmp_path / "sample_submission.csv", 100)
    out = tmp_path / "submission.csv"
    made_by = {"params": {"train.epochs": 3}, "git_rev": "abc1234+dirty", "experiment": "fast-1"}
    predict([trained_model], prepared_dir / "test.npz", sample, "kaggle", out, batch_size=32, made_by=made_by)
    assert json.loads((tmp_path / "submission.json").read_text()).items() >= made_by.items()


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
