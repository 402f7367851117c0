"""Submit submissions/submission.csv to Kaggle, after checking it, wait for its score and record it.

It refuses, before any network call, a file that fails the check and one that predict's
sidecar (submissions/submission.json) says was built from the offline sample. Each submission
gets a row in submissions/leaderboard.csv, a tracked file: its score, with the git revision,
DVC experiment, params and sha256 of what was submitted.

    python -m src.submit -m "seed CNN, 10 epochs"
    python -m src.submit --refresh    # fills in the scores of PENDING rows

Not a DVC stage: submitting is a deliberate act, and Kaggle limits submissions per day.
"""

import argparse
import csv
import hashlib
import io
import json
import os
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import NamedTuple

import yaml

from .atomic import atomic_path
from .prepare import DataError, read_submission
from .kaggle_access import KaggleError, RetryPolicy, connect, plain_errors, with_retries


LEADERBOARD = Path("submissions/leaderboard.csv")
COLUMNS = ("submitted_at", "ref", "status", "public_score", "error", "message", "file", "sha256", "git_rev",
           "experiment", "params")
SCORED = ("COMPLETE", "ERROR")  # Kaggle's final submission statuses; the other is PENDING


class BuiltFromSample(Exception):
    """The file is predict's output on the offline sample's test digits, not on the competition's test set."""


class Outcome(NamedTuple):
    """Kaggle's verdict on a submission, as ListSubmissions gives it."""

    status: str  # one of SCORED
    public_score: str
    error: str  # Kaggle's errorDescription


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


def check_before_submitting(submission_csv, sample_csv):
    """Raise BuiltFromSample or DataError unless Kaggle can score submission_csv."""
    # First, because it names the cause: against Kaggle's sample_submission.csv a sample-built
    # file would only show up as a wrong row count.
    if built_from_sample(submission_csv):
        raise BuiltFromSample(
            f"{submission_csv} was built from the offline sample, not the competition data "
            f"(see {provenance_path(submission_csv)}), so Kaggle cannot score it; set up Kaggle credentials "
            f"(README: Kaggle credentials) and run `dvc repro`, which then switches to the competition data "
            f"(with data.source 'auto', the default) and rebuilds the file.")
    check_submission(submission_csv, sample_csv)


def submit(api, submission_csv, competition, message, retry):
    """Upload submission_csv with the `kaggle` client and return Kaggle's answer.

    A 429 is retried as `retry` says; a 5xx is not, since Kaggle may have taken the submission.
    """
    with plain_errors(competition):
        response = with_retries(lambda: api.competition_submit(str(submission_csv), message, competition, quiet=True),
                                retry, idempotent=False, program="submit")
    # A failed upload is reported in the message, not raised.
    if response.message == api.COMPETITION_SUBMIT_UPLOAD_FAILED_MESSAGE:
        raise KaggleError(f"the upload of {submission_csv} to Kaggle failed; try again later.")
    return response


def list_submissions(api, competition, retry):
    """Kaggle's latest submissions to `competition`, newest first; a read, so a 429 or 5xx is tried again."""
    with plain_errors(competition):
        return with_retries(lambda: api.competition_submissions(competition), retry,
                            idempotent=True, program="submit") or []


def scored(submissions, refs):
    """{ref: Outcome} for those of `submissions` with a ref in `refs` (strings) that Kaggle has finished scoring."""
    return {str(s.ref): Outcome(s.status.name, s.public_score or "", s.error_description or "")
            for s in submissions if str(s.ref) in refs and s.status.name in SCORED}


def wait_for_outcomes(list_latest, refs, wait_seconds, poll_seconds, clock=time.monotonic, sleep=time.sleep):
    """Call list_latest() every poll_seconds until all `refs` are scored or wait_seconds have passed.

    Returns scored()'s {ref: Outcome}, which lacks the refs still pending; with wait_seconds 0 it looks once.
    """
    deadline = clock() + wait_seconds
    while True:
        outcomes = scored(list_latest(), refs)
        left = deadline - clock()
        if outcomes.keys() == set(refs) or left <= 0:
            return outcomes
        sleep(min(poll_seconds, left))


def describe(ref, outcome):
    if outcome.status == "ERROR":
        return f"Kaggle could not score submission {ref}: {outcome.error}"
    return f"Kaggle scored submission {ref}: public score {outcome.public_score}"


def pending_note(ref):
    return (f"Submission {ref} is recorded as PENDING in {LEADERBOARD}; "
            f"`python -m src.submit --refresh` fills in its score later.")


def git(*args):
    """git's output, stripped; "" when git is missing or fails, as outside a repository."""
    try:
        result = subprocess.run(["git", *args], capture_output=True, text=True)
    except OSError:
        return ""
    return result.stdout.strip() if result.returncode == 0 else ""


def git_revision():
    """HEAD's short hash, with "+dirty" when tracked files differ from it; "" outside a git repository.

    The leaderboard does not count: else each recorded submission would make the next one dirty.
    """
    revision = git("rev-parse", "--short", "HEAD")
    if revision and git("status", "--porcelain", "--untracked-files=no", "--", ":/", f":(exclude){LEADERBOARD}"):
        revision += "+dirty"
    return revision


def experiment_of(submission_csv, environ=os.environ):
    """The name of the DVC experiment that made submission_csv; "" when none is known.

    DVC_EXP_NAME when set (DVC sets it in the commands of an experiment it runs); else the
    experiments run on HEAD whose dvc.lock records the file's md5, DVC's hash of it: after
    `dvc exp run` or `dvc exp apply` the file is that experiment's output.
    """
    if environ.get("DVC_EXP_NAME"):
        return environ["DVC_EXP_NAME"]
    head = git("rev-parse", "HEAD")
    if not head:
        return ""
    md5 = hashlib.md5(Path(submission_csv).read_bytes(), usedforsecurity=False).hexdigest()
    # DVC keeps each experiment's commit as refs/exps/<baseline's first 2 hex digits>/<the rest>/<name>.
    refs = git("for-each-ref", "--format=%(refname)", f"refs/exps/{head[:2]}/{head[2:]}/").split()
    return " ".join(ref.rsplit("/", 1)[1] for ref in refs if f"md5: {md5}" in git("show", f"{ref}:dvc.lock"))


def flat_params(params, prefix=""):
    """params.yaml's values by dotted name, as DVC names them: {"train.epochs": 10, ...}."""
    flat = {}
    for name, value in params.items():
        if isinstance(value, dict):
            flat.update(flat_params(value, f"{prefix}{name}."))
        else:
            flat[f"{prefix}{name}"] = value
    return flat


def what_was_submitted(submission_csv, message, params):
    """The leaderboard columns that say what submission_csv is and what made it."""
    return {"message": message, "file": str(submission_csv), "sha256": sha256_of(submission_csv),
            "git_rev": git_revision(), "experiment": experiment_of(submission_csv),
            "params": json.dumps(flat_params(params), sort_keys=True)}


def append_row(leaderboard, row):
    """Add `row` (COLUMNS, "" for those missing) to the leaderboard, after a header when it is new.

    The old rows are copied byte for byte; a crash leaves the old file, as atomic_path does.
    """
    old = leaderboard.read_bytes() if leaderboard.exists() else b""
    if old and not old.endswith(b"\n"):  # a hand edit that dropped the last newline
        old += b"\n"
    new = io.StringIO()
    writer = csv.DictWriter(new, COLUMNS, lineterminator="\n")
    if not old:
        writer.writeheader()
    writer.writerow(row)
    with atomic_path(leaderboard) as tmp:
        tmp.write_bytes(old + new.getvalue().encode())


def read_rows(leaderboard):
    """(columns, rows as dicts) of the leaderboard; a missing one has none."""
    if not leaderboard.exists():
        return list(COLUMNS), []
    with leaderboard.open(newline="", encoding="utf-8") as file:
        reader = csv.DictReader(file)
        return reader.fieldnames, list(reader)


def record_outcomes(leaderboard, outcomes):
    """Write each {ref: Outcome} into that ref's PENDING row; every other row and column stays as it is."""
    columns, rows = read_rows(leaderboard)
    for row in rows:
        if row["status"] == "PENDING" and row["ref"] in outcomes:
            outcome = outcomes[row["ref"]]
            row.update(status=outcome.status, public_score=outcome.public_score, error=outcome.error)
    with atomic_path(leaderboard) as tmp, tmp.open("w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def submit_and_record(args, params):
    """Submit args.file, record it as PENDING, wait for its score and record that; exit 1 if Kaggle says ERROR."""
    for path in (args.file, args.sample):
        if not path.is_file():
            raise SystemExit(f"submit: error: {path} does not exist; `dvc repro` makes it")
    competition, retry = params["data"]["competition"], RetryPolicy(**params["data"]["retry"])
    try:
        check_before_submitting(args.file, args.sample)
        # Gathered first, so that nothing can fail between Kaggle taking the file and its row.
        row = what_was_submitted(args.file, args.message, params)
        api = connect()
        response = submit(api, args.file, competition, args.message, retry)
    except (BuiltFromSample, DataError, KaggleError) as error:
        raise SystemExit(f"submit: error: {error}") from None
    ref = str(response.ref)
    submitted_at = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    # On disk before the wait, so that a wait cut short still leaves the row, for --refresh.
    append_row(LEADERBOARD, {**row, "submitted_at": submitted_at, "ref": ref, "status": "PENDING"})
    print(f"submit: Kaggle answered: {response.message} (submission ref {ref})")
    try:
        print(f"submit: waiting up to {args.wait:g} s for the score (Ctrl-C stops waiting)", flush=True)
        outcomes = wait_for_outcomes(lambda: list_submissions(api, competition, retry), {ref}, args.wait, args.poll)
    except KaggleError as error:
        raise SystemExit(f"submit: error: while waiting for the score: {error} {pending_note(ref)}") from None
    except KeyboardInterrupt:
        raise SystemExit(f"submit: stopped waiting. {pending_note(ref)}") from None
    if ref not in outcomes:
        print(f"submit: no score from Kaggle within {args.wait:g} s. {pending_note(ref)}")
        return
    record_outcomes(LEADERBOARD, outcomes)
    if outcomes[ref].status == "ERROR":
        raise SystemExit(f"submit: error: {describe(ref, outcomes[ref])} (recorded in {LEADERBOARD})")
    print(f"submit: {describe(ref, outcomes[ref])} (recorded in {LEADERBOARD})")


def refresh(args, params):
    """Fill in the scores of the leaderboard's PENDING rows that Kaggle has scored by now, and say what they are."""
    pending = {row["ref"] for row in read_rows(LEADERBOARD)[1] if row["status"] == "PENDING"}
    if not pending:
        print(f"submit: no PENDING submission in {LEADERBOARD}")
        return
    competition, retry = params["data"]["competition"], RetryPolicy(**params["data"]["retry"])
    try:
        api = connect()
        outcomes = wait_for_outcomes(lambda: list_submissions(api, competition, retry), pending, args.wait, args.poll)
    except KaggleError as error:
        raise SystemExit(f"submit: error: {error}") from None
    record_outcomes(LEADERBOARD, outcomes)
    for ref in sorted(pending):
        print(f"submit: {describe(ref, outcomes[ref]) if ref in outcomes else f'submission {ref} is still PENDING'}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-f", "--file", default="submissions/submission.csv", type=Path)
    task = parser.add_mutually_exclusive_group(required=True)
    task.add_argument("-m", "--message", help="the submission's description on Kaggle")
    task.add_argument("--refresh", action="store_true",
                      help=f"fill in the scores of the PENDING rows of {LEADERBOARD} instead of submitting")
    parser.add_argument("--sample", default="data/raw/sample_submission.csv", type=Path,
                        help="the competition's sample_submission.csv, to check the file against")
    parser.add_argument("--wait", default=600, type=float, metavar="SECONDS",
                        help="how long to wait for Kaggle's score (default: 600); 0: look once")
    parser.add_argument("--poll", default=10, type=float, metavar="SECONDS",
                        help="the pause between two looks at Kaggle's submissions (default: 10)")
    args = parser.parse_args()
    params = yaml.safe_load(Path("params.yaml").read_text())
    if args.refresh:
        refresh(args, params)
    else:
        submit_and_record(args, params)


if __name__ == "__main__":
    main()
