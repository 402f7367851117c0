"""Submit submissions/submission.csv to Kaggle, after checking it, wait for its score and record it.

It refuses, before any network call, a file that fails the check and one that predict's
sidecar (submissions/submission.json) says was built from the offline sample. Each submission
gets a row in submissions/leaderboard.csv, a tracked file: its score, with the git revision,
DVC experiment, params and sha256 of what was submitted.

Not a DVC stage: submitting is a deliberate act, and Kaggle limits submissions per day.
"""

import tempfile
from datetime import UTC, datetime
from pathlib import Path

from . import stage_process
from .kaggle_access import (
    KaggleError,
    competition_sample_submission,
    connect,
    list_submissions,
    submissions_left_today,
    submit_file,
    wait_for_outcomes,
)


def describe(ref, outcome):
    if outcome.status == "ERROR":
        return f"Kaggle could not score submission {ref}: {outcome.error}"
    return f"Kaggle scored submission {ref}: public score {outcome.public_score}"


def pending_note(ref):
    from .leaderboard import LEADERBOARD

    return (
        f"Submission {ref} is recorded as PENDING in {LEADERBOARD}; "
        f"`python -m src.submit --refresh` fills in its score later."
    )


def submit_and_record(args, params):
    """Submit args.file, record it as PENDING, wait for its score and record that; exit 1 if Kaggle says ERROR."""
    # Here, not at the top: --help needs none of them, and pandas is slow to load.
    from .leaderboard import LEADERBOARD, append_row, record_outcomes, what_was_submitted
    from .submission import check_before_submitting, check_submission

    for path in (args.file, args.sample):
        if not path.is_file():
            raise stage_process.UserError(f"{path} does not exist; `dvc repro` makes it")
    competition, retry = params.data.competition, params.runtime.kaggle
    check_before_submitting(args.file, args.sample)
    # Gathered first, so that nothing can fail between Kaggle taking the file and its row.
    row = what_was_submitted(args.file, args.message, params)
    api = connect()
    with tempfile.TemporaryDirectory() as folder:
        # The competition's row count, not the local sample's: the local data may be the offline sample.
        check_submission(args.file, competition_sample_submission(api, competition, folder, retry))
    left = submissions_left_today(api, competition, retry)
    if left < 1:
        raise KaggleError(
            f"Kaggle takes no more submissions to '{competition}' today (the daily limit is "
            f"reached); {args.file} is kept: submit it after 00:00 UTC"
        )
    print(
        f"submit: Kaggle takes {left} more submission{'s' if left > 1 else ''} today; uploading {args.file}",
        flush=True,
    )
    response = submit_file(api, args.file, competition, args.message, retry)
    ref = str(response.ref)
    submitted_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    # On disk before the wait, so that a wait cut short still leaves the row, for --refresh.
    row.update(submitted_at=submitted_at, ref=ref, status="PENDING", left_today=left - 1)
    append_row(LEADERBOARD, row)
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
    from .leaderboard import LEADERBOARD, read_rows, record_outcomes  # here, as submit_and_record's imports

    pending = {row["ref"] for row in read_rows(LEADERBOARD)[1] if row["status"] == "PENDING"}
    if not pending:
        print(f"submit: no PENDING submission in {LEADERBOARD}")
        return
    competition, retry = params.data.competition, params.runtime.kaggle
    api = connect()
    outcomes = wait_for_outcomes(lambda: list_submissions(api, competition, retry), pending, args.wait, args.poll)
    record_outcomes(LEADERBOARD, outcomes)
    for ref in sorted(pending):
        print(f"submit: {describe(ref, outcomes[ref]) if ref in outcomes else f'submission {ref} is still PENDING'}")


def main():
    parser = stage_process.argument_parser(
        "src.submit",
        __doc__,
        'python -m src.submit -m "seed CNN, 10 epochs"',
        "python -m src.submit --refresh    # fills in the scores of PENDING rows",
    )
    parser.add_argument(
        "-f",
        "--file",
        default="submissions/submission.csv",
        type=Path,
        help="the file to submit (default: %(default)s)",
    )
    task = parser.add_mutually_exclusive_group(required=True)
    task.add_argument("-m", "--message", help="the submission's description on Kaggle")
    task.add_argument(
        "--refresh",
        action="store_true",
        help="fill in the scores of the leaderboard's PENDING rows instead of submitting",
    )
    parser.add_argument(
        "--sample",
        default="data/raw/sample_submission.csv",
        type=Path,
        help="the competition's sample_submission.csv, to check the file against",
    )
    parser.add_argument(
        "--wait",
        default=600,
        type=float,
        metavar="SECONDS",
        help="how long to wait for Kaggle's score (default: 600); 0: look once",
    )
    parser.add_argument(
        "--poll",
        default=10,
        type=float,
        metavar="SECONDS",
        help="the pause between two looks at Kaggle's submissions (default: 10)",
    )
    args = parser.parse_args()
    with stage_process.stage("submit"):
        from . import config

        params = config.load_params()
        if args.refresh:
            refresh(args, params)
        else:
            submit_and_record(args, params)


if __name__ == "__main__":
    main()
