"""Stage `predict`: label test.csv with the ensemble and write a Kaggle-ready submission.csv."""

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
from .models import in_precision, precision_policy
from .prepare import DataError
from .submit import check_submission, write_provenance


def ensemble_members(ensemble):
    """[(variant, seed)]: one member per variant and seed in params.yaml `ensemble`, as dvc.yaml's matrix makes them."""
    return [(variant, seed) for variant in ensemble["variants"] for seed in ensemble["seeds"]]


def member_paths(members_dir, ensemble):
    """The ensemble's models, as the train stages write them."""
    paths = [Path(members_dir) / f"{variant}-{seed}.keras" for variant, seed in ensemble_members(ensemble)]
    missing = [str(path) for path in paths if not path.exists()]
    if missing:
        raise FileNotFoundError(f"no trained member {', '.join(missing)}; `dvc repro` trains it")
    return paths


def member_probabilities(model_paths, images, batch_size, tta_shift=0, policy="float32"):
    """Each member's softmax outputs, (members, N, 10); the ensemble's are their mean over axis 0.

    The members compute in the Keras dtype policy `policy` (see models.precision_policy),
    whatever they trained in. With tta_shift, each member's are its mean over the images as
    given and moved tta_shift pixels up, down, left and right (test-time augmentation).
    """
    views = [images] if not tta_shift else [
        shifted(images, dy, dx) for dy, dx in ((0, 0), (-tta_shift, 0), (tta_shift, 0), (0, -tta_shift), (0, tta_shift))
    ]
    members = []
    for path in model_paths:
        model = in_precision(keras.models.load_model(path), policy)
        members.append(np.mean([softmax(model, view, batch_size) for view in views], axis=0))
    return np.stack(members)


def softmax(model, images, batch_size):
    """model's outputs for images, a batch at a time.

    predict_on_batch, not predict: predict's tf.data thread competes with the convolutions
    for the cores, and on 2 cores it took 2.7 s in place of 1.4 s about every other run.
    """
    return np.concatenate([model.predict_on_batch(images[i:i + batch_size]) for i in range(0, len(images), batch_size)])


def shifted(images, dy, dx):
    """(N, H, W, C) images moved dy pixels down and dx right (negative: up, left), filled with 0 (background)."""
    pad = max(abs(dy), abs(dx))
    padded = np.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    height, width = images.shape[1:3]
    return padded[:, pad - dy: pad - dy + height, pad - dx: pad - dx + width]


def predict(model_paths, test_npz, sample_csv, source, submission_csv, batch_size, tta_shift=0, policy="float32"):
    """Write submission_csv (ImageId 1..N, Label) from the ensemble of model_paths, computing
    in `policy`, with test-time augmentation if tta_shift (see member_probabilities); it is
    checked against sample_csv before it lands.

    Then its provenance sidecar records `source` ("kaggle" or "sample"), so that submit can
    refuse a file built from the offline sample.
    """
    images = np.load(test_npz)["x"]
    labels = member_probabilities(model_paths, images, batch_size, tta_shift, policy).mean(axis=0).argmax(axis=1)
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
    parser.add_argument("members_dir", help="the train stages' models, <variant>-<seed>.keras")
    parser.add_argument("test_npz")
    parser.add_argument("sample_csv", help="the competition's sample_submission.csv")
    parser.add_argument("source_json", help="the `source` stage's decision, recorded beside the submission")
    parser.add_argument("submission_csv")
    args = parser.parse_args()
    params = yaml.safe_load(Path("params.yaml").read_text())
    source = json.loads(Path(args.source_json).read_text())["source"]
    try:
        submission = predict(member_paths(args.members_dir, params["ensemble"]), args.test_npz,
                             args.sample_csv, source, args.submission_csv, params["predict"]["batch_size"],
                             params["ensemble"]["tta_shift"], precision_policy(params["ensemble"]["precision"]))
    except (DataError, FileNotFoundError) as error:
        raise SystemExit(f"predict: error: {error}") from None
    print(f"predict: wrote {len(submission)} rows, built from the {source} data, to {args.submission_csv}")


if __name__ == "__main__":
    main()
