"""Submit submissions/submission.csv to Kaggle, after checking it, and print Kaggle's answer.

It refuses, before any network call, a file that fails the check and one that predict's
sidecar (submissions/submission.json) says was built from the offline sample.

    python -m src.submit -m "seed CNN, 10 epochs"

Not a DVC stage: submitting is a deliberate act, and Kaggle limits submissions per day.
"""

import argparse
import hashlib
import json
from pathlib import Path

import yaml

from .atomic import atomic_path
from .prepare import DataError, read_submission
from .kaggle_access import KaggleError, RetryPolicy, connect, plain_errors, with_retries


class BuiltFromSample(Exception):
    """The file is predict's output on the offline sample's test digits, not on the competition's test set."""


def check_submission(submission_csv, sample_csv):
    """Raise DataError unless submission_csv has the header, ids and row count of sample_csv."""
    read_submission(submission_csv, rows=len(read_submission(sample_csv)))


def provenance_path(submission_csv):
    """The sidecar in which predict records what it built submission_csv from."""
    return Path(submission_csv).with_suffix(".json")


def sha256_of(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def write_provenance(submission_csv, source, rows):
    """Record beside submission_csv the data source it was built from, and its digest to tie the record to it."""
    record = {"source": source, "rows": rows, "sha256": sha256_of(submission_csv)}
    with atomic_path(provenance_path(submission_csv)) as tmp:
        tmp.write_text(json.dumps(record) + "\n")


def built_from_sample(submission_csv):
    """Whether the sidecar vouches that submission_csv, byte for byte, was built from the offline sample.

    No sidecar, one that cannot be read, or one whose sha256 differs (the file was edited, or
    made elsewhere) vouches for nothing: then validation alone judges the file.
    """
    try:
        provenance = json.loads(provenance_path(submission_csv).read_text())
    except (FileNotFoundError, ValueError):
        return False
    return provenance.get("source") == "sample" and provenance.get("sha256") == sha256_of(submission_csv)


def submit(submission_csv, sample_csv, competition, message, retry):
    """Check the file, upload it with the `kaggle` client, and return Kaggle's answer.

    A 429 is retried as `retry` says; a 5xx is not, since Kaggle may have taken the submission.
    """
    # First, because it names the cause: against Kaggle's sample_submission.csv a sample-built
    # file would only show up as a wrong row count.
    if built_from_sample(submission_csv):
        raise BuiltFromSample(
            f"{submission_csv} was built from the offline sample, not the competition data "
            f"(see {provenance_path(submission_csv)}), so Kaggle cannot score it; set up Kaggle credentials "
            f"(README: Kaggle credentials) and run `dvc repro`, which then switches to the competition data "
            f"(with data.source 'auto', the default) and rebuilds the file.")
    check_submission(submission_csv, sample_csv)
    api = connect()
    with plain_errors(competition):
        response = with_retries(lambda: api.competition_submit(str(submission_csv), message, competition, quiet=True),
                                retry, idempotent=False, program="submit")
    # A failed upload is reported in the message, not raised.
    if response.message == api.COMPETITION_SUBMIT_UPLOAD_FAILED_MESSAGE:
        raise KaggleError(f"the upload of {submission_csv} to Kaggle failed; try again later.")
    return response


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-f", "--file", default="submissions/submission.csv", type=Path)
    parser.add_argument("-m", "--message", required=True, help="the submission's description on Kaggle")
    parser.add_argument("--sample", default="data/raw/sample_submission.csv", type=Path,
                        help="the competition's sample_submission.csv, to check the file against")
    args = parser.parse_args()
    params = yaml.safe_load(Path("params.yaml").read_text())["data"]
    for path in (args.file, args.sample):
        if not path.is_file():
            raise SystemExit(f"submit: error: {path} does not exist; `dvc repro` makes it")
    try:
        response = submit(args.file, args.sample, params["competition"], args.message, RetryPolicy(**params["retry"]))
    except (BuiltFromSample, DataError, KaggleError) as error:
        raise SystemExit(f"submit: error: {error}") from None
    print(f"submit: Kaggle answered: {response.message} (submission ref {response.ref})")
    print(f"See the score with: kaggle competitions submissions -c {params['competition']}")


if __name__ == "__main__":
    main()
