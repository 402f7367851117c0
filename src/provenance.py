"""What made a file: the git revision and the DVC experiment, as the submission sidecar and the leaderboard
record them."""

import hashlib
import os
import subprocess
from pathlib import Path

# What the pipeline writes and records there, not what it reads.
RECORDS = "submissions"


def git(*args):
    """git's output, stripped; "" when git is missing or fails, as outside a repository."""
    try:
        result = subprocess.run(["git", *args], capture_output=True, text=True)
    except OSError:
        return ""
    return result.stdout.strip() if result.returncode == 0 else ""


def git_revision():
    """HEAD's short hash, with "+dirty" when tracked files differ from it; "" outside a git repository.

    submissions/ does not count: else each submission recorded in its leaderboard would make the next one dirty.
    """
    revision = git("rev-parse", "--short", "HEAD")
    if revision and git("status", "--porcelain", "--untracked-files=no", "--", ":/", f":(exclude){RECORDS}"):
        revision += "+dirty"
    return revision


def experiment_of(submission_csv, environ=os.environ):
    """The name of the DVC experiment that made submission_csv; "" when none is known.

    DVC_EXP_NAME when set (DVC sets it in the commands of an experiment it runs); else the
    experiments run on HEAD whose dvc.lock records the file's md5, DVC's hash of it: after
    `dvc exp run` or `dvc exp apply` the file is that experiment's output.
    """
    if running_experiment(environ):
        return running_experiment(environ)
    head = git("rev-parse", "HEAD")
    if not head:
        return ""
    md5 = hashlib.md5(Path(submission_csv).read_bytes(), usedforsecurity=False).hexdigest()
    # DVC keeps each experiment's commit as refs/exps/<baseline's first 2 hex digits>/<the rest>/<name>.
    refs = git("for-each-ref", "--format=%(refname)", f"refs/exps/{head[:2]}/{head[2:]}/").split()
    return " ".join(ref.rsplit("/", 1)[1] for ref in refs if f"md5: {md5}" in git("show", f"{ref}:dvc.lock"))


def running_experiment(environ=os.environ):
    """The DVC experiment this process runs in: DVC names it in the environment of its stages' commands."""
    return environ.get("DVC_EXP_NAME", "")
