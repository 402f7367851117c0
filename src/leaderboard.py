"""submissions/leaderboard.csv, a tracked file: a row per submission to Kaggle, with its score, the git
revision, DVC experiment, params and sha256 of what was submitted."""

import csv
import io
import json
from pathlib import Path

from . import config
from .atomic import atomic_path
from .provenance import experiment_of, git_revision
from .submission import sha256_of

LEADERBOARD = Path("submissions/leaderboard.csv")
COLUMNS = (
    "submitted_at",
    "ref",
    "status",
    "public_score",
    "error",
    "message",
    "file",
    "sha256",
    "git_rev",
    "experiment",
    "params",
    "left_today",
)


def what_was_submitted(submission_csv, message, params):
    """The leaderboard columns that say what submission_csv is and what made it (params: config.Params)."""
    return {
        "message": message,
        "file": str(submission_csv),
        "sha256": sha256_of(submission_csv),
        "git_rev": git_revision(),
        "experiment": experiment_of(submission_csv),
        "params": json.dumps(config.flat(params), sort_keys=True),
    }


def append_row(leaderboard, row):
    """Add `row` (COLUMNS, "" for those missing) to the leaderboard, after a header when it is new.

    The old rows are copied byte for byte; a crash leaves the old file, as atomic_path does. A
    leaderboard from before a column was added gets it, empty in its old rows.
    """
    columns, rows = read_rows(leaderboard)
    if missing := [column for column in COLUMNS if column not in columns]:
        with atomic_path(leaderboard) as tmp, tmp.open("w", newline="", encoding="utf-8") as file:
            writer = csv.DictWriter(file, [*columns, *missing], lineterminator="\n")
            writer.writeheader()
            writer.writerows([*rows, row])
        return
    old = leaderboard.read_bytes() if leaderboard.exists() else b""
    if old and not old.endswith(b"\n"):  # a hand edit that dropped the last newline
        old += b"\n"
    new = io.StringIO()
    writer = csv.DictWriter(new, columns, lineterminator="\n")
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
