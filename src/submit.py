"""Submit submissions/submission.csv to Kaggle, after checking it, and print Kaggle's answer.

    python -m src.submit -m "seed CNN, 10 epochs"

Not a DVC stage: submitting is a deliberate act, and Kaggle limits submissions per day.
"""

import argparse
from pathlib import Path

import yaml

from .prepare import DataError, read_submission
from .kaggle_access import KaggleError, connect, plain_errors


def check_submission(submission_csv, sample_csv):
    """Raise DataError unless submission_csv has the header, ids and row count of sample_csv."""
    read_submission(submission_csv, rows=len(read_submission(sample_csv)))


def submit(submission_csv, sample_csv, competition, message):
    """Check the file, upload it with the `kaggle` client, and return Kaggle's answer."""
    check_submission(submission_csv, sample_csv)
    api = connect()
    with plain_errors(competition):
        response = api.competition_submit(str(submission_csv), message, competition, quiet=True)
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
    competition = yaml.safe_load(Path("params.yaml").read_text())["data"]["competition"]
    try:
        response = submit(args.file, args.sample, competition, args.message)
    except (DataError, KaggleError) as error:
        raise SystemExit(f"submit: error: {error}") from None
    print(f"submit: Kaggle answered: {response.message} (submission ref {response.ref})")
    print(f"See the score with: kaggle competitions submissions -c {competition}")


if __name__ == "__main__":
    main()
