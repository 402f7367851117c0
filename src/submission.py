"""submission.csv: written from the labels and checked against the competition's sample, with a
provenance sidecar that says what it was built from."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd

from .atomic import atomic_paths
from .competition_csv import DataError, read_submission
from .stage_process import UserError


class BuiltFromSample(UserError):
    """The file is predict's output on the offline sample's test digits, not on the competition's test set."""


def write_submission(submission_csv, labels, sample_csv, source, made_by=None):
    """Write submission_csv (ImageId 1..N, Label), checked against sample_csv before it lands,
    then its sidecar, which records `source` ("kaggle" or "sample") so that submit can refuse a
    file built from the offline sample, and made_by ({"params": ..., "git_rev": ..., "experiment": ...})."""
    submission = pd.DataFrame({"ImageId": np.arange(1, len(labels) + 1), "Label": labels})
    with atomic_paths(submission_csv, provenance_path(submission_csv)) as (tmp, sidecar):
        submission.to_csv(tmp, index=False)
        try:
            check_submission(tmp, sample_csv)
        except DataError as error:  # name the file the user knows, not its temporary twin
            raise DataError(str(error).replace(str(tmp), str(submission_csv))) from None
        sidecar.write_text(provenance(tmp, source, len(submission), made_by))
    return submission


def check_submission(submission_csv, sample_csv):
    """Raise DataError unless submission_csv has the header, ids and row count of sample_csv."""
    read_submission(submission_csv, rows=len(read_submission(sample_csv)))


def provenance_path(submission_csv):
    """The sidecar in which predict records what it built submission_csv from."""
    return Path(submission_csv).with_suffix(".json")


def sha256_of(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def provenance(submission_csv, source, rows, made_by=None):
    """The sidecar's text for submission_csv: its source, rows, digests, and what made it."""
    record = {
        "source": source,
        "rows": rows,
        "sha256": sha256_of(submission_csv),
        "values_sha256": values_sha256(submission_csv),
        **(made_by or {}),
    }
    return json.dumps(record, indent=2) + "\n"


def built_from_sample(submission_csv):
    """Whether the sidecar vouches that submission_csv was built from the offline sample: its bytes, or its ids
    and labels whatever the bytes that hold them (line ends, a blank line, quotes).

    No sidecar, one that cannot be read, or one whose digests both differ (the labels were
    edited, or the file made elsewhere) vouches for nothing: then the checks against the
    competition judge the file.
    """
    try:
        provenance = json.loads(provenance_path(submission_csv).read_text())
    except (FileNotFoundError, ValueError):
        return False
    if provenance.get("source") != "sample":
        return False
    if provenance.get("sha256") == sha256_of(submission_csv):
        return True
    try:
        return provenance.get("values_sha256") == values_sha256(submission_csv)
    except DataError:
        return False


def values_sha256(submission_csv):
    """The digest of submission_csv's ids and labels as numbers, the same for any bytes that spell them."""
    return hashlib.sha256(read_submission(submission_csv).astype("<i4").tobytes()).hexdigest()


def check_before_submitting(submission_csv, sample_csv):
    """Raise BuiltFromSample or DataError unless Kaggle can score submission_csv."""
    # First, because it names the cause: against Kaggle's sample_submission.csv a sample-built
    # file would only show up as a wrong row count.
    if built_from_sample(submission_csv):
        raise BuiltFromSample(
            f"{submission_csv} was built from the offline sample, not the competition data "
            f"(see {provenance_path(submission_csv)}), so Kaggle cannot score it; set up Kaggle credentials "
            f"(README: Kaggle credentials) and run `dvc repro`, which then switches to the competition data "
            f"(with data.source 'auto', the default) and rebuilds the file."
        )
    check_submission(submission_csv, sample_csv)
