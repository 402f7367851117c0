"""Stage `predict`: label test.csv and write a Kaggle-ready submission.csv."""

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter out of the stage log

import keras
import numpy as np
import pandas as pd
import yaml

from .atomic import atomic_path
from .prepare import DataError
from .submit import check_submission, write_provenance


def predict(model_path, test_npz, sample_csv, source, submission_csv, batch_size):
    """Write submission_csv (ImageId 1..N, Label); it is checked against sample_csv before it lands.

    Then its provenance sidecar records `source` ("kaggle" or "sample"), so that submit can
    refuse a file built from the offline sample.
    """
    model = keras.models.load_model(model_path)
    images = np.load(test_npz)["x"]
    labels = model.predict(images, batch_size=batch_size, verbose=0).argmax(axis=1)
    submission = pd.DataFrame({"ImageId": np.arange(1, len(labels) + 1), "Label": labels})
    with atomic_path(submission_csv) as tmp:
        submission.to_csv(tmp, index=False)
        try:
            check_submission(tmp, sample_csv)
        except DataError as error:  # name the file the user knows, not its temporary twin
            raise DataError(str(error).replace(str(tmp), str(submission_csv))) from None
    write_provenance(submission_csv, source, len(submission))
    return submission


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("model_path")
    parser.add_argument("test_npz")
    parser.add_argument("sample_csv", help="the competition's sample_submission.csv")
    parser.add_argument("source_json", help="the `source` stage's decision, recorded beside the submission")
    parser.add_argument("submission_csv")
    args = parser.parse_args()
    params = yaml.safe_load(Path("params.yaml").read_text())["predict"]
    source = json.loads(Path(args.source_json).read_text())["source"]
    try:
        submission = predict(args.model_path, args.test_npz, args.sample_csv, source, args.submission_csv,
                             params["batch_size"])
    except DataError as error:
        raise SystemExit(f"predict: error: {error}") from None
    print(f"predict: wrote {len(submission)} rows, built from the {source} data, to {args.submission_csv}")


if __name__ == "__main__":
    main()
