"""submissions/leaderboard.csv, a tracked file: a row per submission to Kaggle, with its score, the git
revision, DVC experiment, params and sha256 of what was submitted."""

import csv
import hashlib
import io
import json
import os
import subprocess
from pathlib import Path

from . import config
from .atomic import atomic_path
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
