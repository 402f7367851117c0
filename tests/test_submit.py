import csv
import hashlib
import json
import math
import signal
import subprocess
import sys
from datetime import datetime, timezone
from types import SimpleNamespace

import pytest

from competition_data import csv_text
from kaggle_server import Failure, Outcome
from src.prepare import DataError
from src.submit import (COLUMNS, append_row, built_from_sample, check_submission, experiment_of, git_revision,
                        sha256_of, wait_for_outcomes, write_provenance)
from workdir import ROOT, assert_no_secret, ctrl_c_as_in_a_terminal, git, make_workdir, run_module


def write(path, header, rows):
    path.write_text(csv_text(header, rows))
    return path


@pytest.fixture
def sample(tmp_path):
    return write(tmp_path / "sample_submission.csv", ["ImageId", "Label"], [(i, 0) for i in range(1, 6)])


def test_a_valid_submission_passes(tmp_path, sample):
    check_submission(write(tmp_path / "s.csv", ["ImageId", "Label"], [(i, i) for i in range(1, 6)]), sample)


@pytest.mark.parametrize(
    "header, rows, message",
    [
        (["ImageId", "label"], [(i, 1) for i in range(1, 6)], r"line 1, column 2: header has 'label' where 'Label'"),
        (["ImageId", "Label"], [(i, 1) for i in range(1, 5)], r"line 6, column 1 \(ImageId\): 4 rows, expected 5"),
        (["ImageId", "Label"], [(i, 1) for i in range(0, 5)], r"line 2, column 1 \(ImageId\): 0 is outside 1\.\."),
        (["ImageId", "Label"], [(1, 1), (3, 1), (2, 1), (4, 1), (5, 1)], r"line 3, column 1 \(ImageId\): 3, expected 2"),
        (["ImageId", "Label"], [(i, 10 if i == 4 else 1) for i in range(1, 6)], r"line 5, column 2 \(Label\): 10 is"),
    ],
)
def test_a_bad_submission_is_named_by_line_and_column(tmp_path, sample, header, rows, message):
    with pytest.raises(DataError, match=message):
        check_submission(write(tmp_path / "s.csv", header, rows), sample)


def project(tmp_path):
    """A folder with params.yaml, a 5-row sample_submission.csv and a valid submission.csv for it."""
    workdir = make_workdir(tmp_path / "project")
    write(workdir / "sample_submission.csv", ["ImageId", "Label"], [(i, 0) for i in range(1, 6)])
    return workdir, write(workdir / "submission.csv", ["ImageId", "Label"], [(i, i % 10) for i in range(1, 6)])


def run_submit(workdir, submission, env, *options):
    return run_module(workdir, "src.submit", "-f", submission, "--sample", "sample_submission.csv",
                      "-m", "seed CNN", "--poll", "0.05", *options, env=env)


def submit(tmp_path, env):
    workdir, submission = project(tmp_path)
    return run_submit(workdir, submission, env), submission


def test_submit_uploads_the_file_and_prints_kaggles_answer(tmp_path, kaggle_server, kaggle_env):
    result, submission = submit(tmp_path, kaggle_env)
    assert result.returncode == 0, result.stderr
    assert kaggle_server.uploads == [submission.read_bytes()]
    assert kaggle_server.calls == ["StartSubmissionUpload", "CreateSubmission", "ListSubmissions"]
    assert kaggle_server.bodies[1]["submissionDescription"] == "seed CNN"
    assert "Kaggle answered: Successfully submitted to Digit Recognizer (submission ref 1001)" in result.stdout
    assert kaggle_env["KAGGLE_KEY"] not in result.stdout + result.stderr


@pytest.mark.parametrize(
    "method, status, advice",
    [
        ("StartSubmissionUpload", 401, "Kaggle rejected the credentials (HTTP 401)"),
        ("CreateSubmission", 403, "https://www.kaggle.com/competitions/digit-recognizer/rules"),
        ("upload", 503, "the upload of"),
    ],
)
def test_submit_failures_say_what_to_do(tmp_path, kaggle_server, kaggle_env, method, status, advice):
    kaggle_server.failures[method] = (status, "no")
    result, submission = submit(tmp_path, kaggle_env)
    assert result.returncode != 0
    [message] = result.stderr.strip().splitlines()
    assert message.startswith("submit: error: ") and advice in message
    assert submission.exists()


def test_submit_refuses_an_invalid_file_before_calling_kaggle_and_keeps_it(tmp_path, kaggle_server, kaggle_env):
    workdir, _ = project(tmp_path)
    submission = write(workdir / "submission.csv", ["ImageId", "Label"], [(i, 0) for i in range(1, 4)])
    before = submission.read_bytes()
    result = run_submit(workdir, submission, kaggle_env)
    assert result.returncode != 0
    assert "submission.csv: line 5, column 1 (ImageId): 3 rows, expected 5" in result.stderr
    assert kaggle_server.calls == []
    assert submission.read_bytes() == before


def test_submit_refuses_a_file_built_from_the_offline_sample_and_keeps_it(tmp_path, kaggle_server, kaggle_env):
    workdir, submission = project(tmp_path)
    write_provenance(submission, "sample", rows=5)
    before = submission.read_bytes()
    result = run_submit(workdir, submission, kaggle_env)
    assert result.returncode != 0
    [message] = result.stderr.strip().splitlines()
    assert message.startswith(f"submit: error: {submission} was built from the offline sample, not the competition")
    assert "set up Kaggle credentials" in message and "`dvc repro`" in message
    assert kaggle_server.calls == []
    assert submission.read_bytes() == before


@pytest.mark.parametrize("source, edited", [("kaggle", False), ("sample", True)],
                         ids=["built-from-kaggle", "sample-built-then-edited"])
def test_submit_uploads_a_file_the_sidecar_does_not_tie_to_the_sample(tmp_path, kaggle_server, kaggle_env,
                                                                     source, edited):
    workdir, submission = project(tmp_path)
    write_provenance(submission, source, rows=5)
    if edited:  # the sidecar's sha256 no longer matches: it says nothing about this file
        write(submission, ["ImageId", "Label"], [(i, 9) for i in range(1, 6)])
    result = run_submit(workdir, submission, kaggle_env)
    assert result.returncode == 0, result.stderr
    assert kaggle_server.uploads == [submission.read_bytes()]


@pytest.mark.parametrize(
    "sidecar, expected",
    [
        (None, False),
        ('{{"source": "kaggle", "rows": 5, "sha256": "{digest}"}}', False),
        ('{{"source": "sample", "rows": 5, "sha256": "{digest}"}}', True),
        ('{{"source": "sample", "rows": 5, "sha256": "{other_digest}"}}', False),
        ("{{not json", False),
    ],
    ids=["none", "kaggle", "sample", "sample-other-digest", "unreadable"],
)
def test_only_a_sidecar_that_matches_the_file_ties_it_to_the_sample(tmp_path, sidecar, expected):
    submission = write(tmp_path / "submission.csv", ["ImageId", "Label"], [(i, 1) for i in range(1, 6)])
    if sidecar is not None:
        (tmp_path / "submission.json").write_text(sidecar.format(digest=sha256_of(submission), other_digest="0" * 64))
    assert built_from_sample(submission) is expected


def test_submit_says_which_file_is_missing(tmp_path, kaggle_server, kaggle_env):
    workdir = make_workdir(tmp_path / "project")
    write(workdir / "sample_submission.csv", ["ImageId", "Label"], [(i, 0) for i in range(1, 6)])
    result = run_module(workdir, "src.submit", "-f", "submissions/submission.csv", "--sample",
                        "sample_submission.csv", "-m", "x", env=kaggle_env)
    assert result.returncode == 1
    assert result.stderr == "submit: error: submissions/submission.csv does not exist; `dvc repro` makes it\n"
    assert kaggle_server.calls == []


def test_a_refused_submission_is_retried_but_a_server_error_is_not(tmp_path, kaggle_server, kaggle_env):
    kaggle_server.failures["CreateSubmission"] = Failure(429, "Too many requests", times=1, retry_after="0")
    result, submission = submit(tmp_path / "refused", kaggle_env)
    assert result.returncode == 0, result.stderr
    assert "submit: Kaggle answered HTTP 429; retrying in 0 s (attempt 2 of 5)" in result.stderr
    assert kaggle_server.calls == ["StartSubmissionUpload", "CreateSubmission"] * 2 + ["ListSubmissions"]

    # After a 5xx Kaggle may have the submission already: trying again could spend a second one.
    kaggle_server.calls.clear()
    kaggle_server.failures["CreateSubmission"] = Failure(503, "Unavailable")
    result, submission = submit(tmp_path / "failed", kaggle_env)
    assert result.returncode == 1
    assert kaggle_server.calls == ["StartSubmissionUpload", "CreateSubmission"]
    [message] = result.stderr.strip().splitlines()
    assert message.startswith("submit: error: Kaggle's API failed (HTTP 503)")


# -- waiting for the score, and the leaderboard ---------------------------------------------------------------------


def leaderboard(workdir):
    with (workdir / "submissions" / "leaderboard.csv").open(newline="") as file:
        return list(csv.DictReader(file))


def commit_all_but_the_submission(repo):
    """Commit every file in repo but submission.csv, a DVC output (git-ignored in the project); the short hash."""
    git(repo, "init", "-q")
    git(repo, "add", "--all", ":!submission.csv")
    git(repo, "commit", "-q", "-m", "commit")
    return git(repo, "rev-parse", "--short", "HEAD")


def test_a_scored_submission_is_recorded_with_what_made_it_and_the_next_is_appended(tmp_path, kaggle_server,
                                                                                       kaggle_env):
    workdir, submission = project(tmp_path)
    revision = commit_all_but_the_submission(workdir)
    env = {**kaggle_env, "DVC_EXP_NAME": ""}
    kaggle_server.pending_polls = 1
    before = datetime.now(timezone.utc).replace(microsecond=0)
    result = run_submit(workdir, submission.name, env)
    assert result.returncode == 0, result.stderr
    assert kaggle_server.calls == ["StartSubmissionUpload", "CreateSubmission", "ListSubmissions", "ListSubmissions"]
    assert ("submit: Kaggle scored submission 1001: public score 0.99123 (recorded in submissions/leaderboard.csv)"
            in result.stdout)
    [row] = leaderboard(workdir)
    assert list(row) == list(COLUMNS)
    submitted_at = datetime.fromisoformat(row.pop("submitted_at").replace("Z", "+00:00"))
    assert before <= submitted_at <= datetime.now(timezone.utc)
    params = json.loads(row.pop("params"))
    assert params["train.epochs"] == 10 and params["data.competition"] == "digit-recognizer"
    assert list(params) == sorted(params)
    assert row == {"ref": "1001", "status": "COMPLETE", "public_score": "0.99123", "error": "", "message": "seed CNN",
                   "file": "submission.csv", "sha256": hashlib.sha256(submission.read_bytes()).hexdigest(),
                   "git_rev": revision, "experiment": ""}
    first = (workdir / "submissions" / "leaderboard.csv").read_text()

    # A params.yaml edited since the commit: the row says so, and holds the edited params.
    (workdir / "params.yaml").write_text((workdir / "params.yaml").read_text().replace("epochs: 10", "epochs: 20"))
    kaggle_server.outcome = Outcome("COMPLETE", "0.98000")
    result = run_submit(workdir, submission.name, env)
    assert result.returncode == 0, result.stderr
    text = (workdir / "submissions" / "leaderboard.csv").read_text()
    print(text)
    assert text.startswith(first)
    _, second_row = leaderboard(workdir)
    assert (second_row["ref"], second_row["public_score"], second_row["git_rev"]) == ("1002", "0.98000",
                                                                                      f"{revision}+dirty")
    assert json.loads(second_row["params"])["train.epochs"] == 20
    assert_no_secret(env, text, result.stdout + result.stderr)


def test_a_submission_kaggle_cannot_score_is_recorded_as_error_and_fails(tmp_path, kaggle_server, kaggle_env):
    kaggle_server.outcome = Outcome("ERROR", error="Submission has 1000 rows, expected 28000")
    env = {**kaggle_env, "GIT_CEILING_DIRECTORIES": str(tmp_path)}  # no git repository: no revision
    result, submission = submit(tmp_path, env)
    assert result.returncode == 1
    [message] = result.stderr.strip().splitlines()
    assert message == ("submit: error: Kaggle could not score submission 1001: Submission has 1000 rows, "
                       "expected 28000 (recorded in submissions/leaderboard.csv)")
    [row] = leaderboard(submission.parent)
    assert (row["status"], row["public_score"], row["error"]) == ("ERROR", "", "Submission has 1000 rows, "
                                                                               "expected 28000")
    assert row["git_rev"] == "" and row["sha256"] == sha256_of(submission)
    assert submission.exists()
    text = (submission.parent / "submissions" / "leaderboard.csv").read_text()
    print(text)
    assert_no_secret(env, text, result.stdout + result.stderr)


def test_a_submission_still_pending_when_the_wait_ends_is_refreshed_later(tmp_path, kaggle_server, kaggle_env):
    kaggle_server.pending_polls = math.inf
    workdir, submission = project(tmp_path)
    result = run_submit(workdir, submission, kaggle_env, "--wait", "0.3")
    assert result.returncode == 0, result.stderr
    assert ("submit: no score from Kaggle within 0.3 s. Submission 1001 is recorded as PENDING in "
            "submissions/leaderboard.csv; `python -m src.submit --refresh` fills in its score later.") in result.stdout
    assert kaggle_server.calls.count("ListSubmissions") > 1
    [row] = leaderboard(workdir)
    assert (row["status"], row["public_score"]) == ("PENDING", "")

    kaggle_server.pending_polls = 0
    result = run_module(workdir, "src.submit", "--refresh", env=kaggle_env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "submit: Kaggle scored submission 1001: public score 0.99123\n"
    [refreshed] = leaderboard(workdir)
    assert refreshed == {**row, "status": "COMPLETE", "public_score": "0.99123"}

    calls = len(kaggle_server.calls)
    result = run_module(workdir, "src.submit", "--refresh", env=kaggle_env)
    assert result.stdout == "submit: no PENDING submission in submissions/leaderboard.csv\n"
    assert len(kaggle_server.calls) == calls


def test_a_failed_look_is_retried_and_a_refused_one_leaves_the_row_pending(tmp_path, kaggle_server, kaggle_env):
    # A look changes nothing on Kaggle, so unlike an upload it is tried again after a server error.
    kaggle_server.failures["ListSubmissions"] = Failure(503, "Unavailable", times=1, retry_after="0")
    result, submission = submit(tmp_path / "failed", kaggle_env)
    assert result.returncode == 0, result.stderr
    assert "submit: Kaggle answered HTTP 503; retrying in 0 s (attempt 2 of 5)" in result.stderr
    assert [row["status"] for row in leaderboard(submission.parent)] == ["COMPLETE"]

    kaggle_server.failures["ListSubmissions"] = (403, "Forbidden")
    result, submission = submit(tmp_path / "forbidden", kaggle_env)
    assert result.returncode == 1
    [message] = result.stderr.strip().splitlines()
    assert message.startswith("submit: error: while waiting for the score: Kaggle refused access (HTTP 403)")
    assert message.endswith("Submission 1002 is recorded as PENDING in submissions/leaderboard.csv; "
                            "`python -m src.submit --refresh` fills in its score later.")
    assert [row["status"] for row in leaderboard(submission.parent)] == ["PENDING"]


def test_ctrl_c_stops_the_wait_and_leaves_the_row_pending(tmp_path, kaggle_server, kaggle_env):
    kaggle_server.pending_polls = math.inf
    workdir, submission = project(tmp_path)
    process = subprocess.Popen(
        [sys.executable, "-m", "src.submit", "-f", submission, "--sample", "sample_submission.csv", "-m", "seed CNN",
         "--poll", "0.05"], cwd=workdir, env={**kaggle_env, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=ctrl_c_as_in_a_terminal)
    try:
        while "waiting up to 600 s" not in process.stdout.readline():
            assert process.poll() is None, process.stderr.read()
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 1
    assert stderr == ("submit: stopped waiting. Submission 1001 is recorded as PENDING in submissions/leaderboard.csv; "
                      "`python -m src.submit --refresh` fills in its score later.\n")
    assert [row["status"] for row in leaderboard(workdir)] == ["PENDING"]


def kaggle_submission(ref, status, public_score=None, error_description=None):
    """What the client's competition_submissions() gives for one submission."""
    return SimpleNamespace(ref=ref, status=SimpleNamespace(name=status), public_score=public_score,
                           error_description=error_description)


def test_waiting_looks_until_every_ref_is_scored_or_time_is_up():
    listings = iter([[kaggle_submission(7, "PENDING")], [kaggle_submission(7, "PENDING")],
                     [kaggle_submission(7, "COMPLETE", "0.9"), kaggle_submission(6, "ERROR", None, "bad")]])
    now, pauses = [0.0], []

    def sleep(seconds):
        pauses.append(seconds)
        now[0] += seconds

    outcomes = wait_for_outcomes(lambda: next(listings), {"7"}, 100, 10, clock=lambda: now[0], sleep=sleep)
    assert outcomes == {"7": ("COMPLETE", "0.9", "")}
    assert pauses == [10, 10]

    now, pauses = [0.0], []
    pending = lambda: [kaggle_submission(7, "PENDING")]  # noqa: E731
    assert wait_for_outcomes(pending, {"7"}, 25, 10, clock=lambda: now[0], sleep=sleep) == {}
    assert pauses == [10, 10, 5]
    assert wait_for_outcomes(pending, {"7"}, 0, 10, clock=lambda: now[0], sleep=sleep) == {}
    assert pauses == [10, 10, 5]  # wait 0: one look, no pause


def test_a_row_is_appended_after_a_hand_edited_last_line(tmp_path):
    board = tmp_path / "leaderboard.csv"
    board.write_text("submitted_at,ref\n2024-01-01T00:00:00Z,1")
    append_row(board, {"ref": "2", "status": "PENDING"})
    assert board.read_text() == "submitted_at,ref\n2024-01-01T00:00:00Z,1\n,2,PENDING,,,,,,,,\n"


def test_the_revision_is_dirty_for_changed_tracked_files_but_not_for_the_leaderboard(tmp_path, monkeypatch):
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    assert git_revision() == ""  # not a git repository
    (tmp_path / "params.yaml").write_text("train:\n  epochs: 10\n")
    (tmp_path / "submissions").mkdir()
    (tmp_path / "submissions" / "leaderboard.csv").write_text("submitted_at\n")
    revision = commit_all_but_the_submission(tmp_path)
    (tmp_path / "notes.txt").write_text("untracked")
    assert git_revision() == revision
    (tmp_path / "submissions" / "leaderboard.csv").write_text("submitted_at\nrecorded\n")
    assert git_revision() == revision
    (tmp_path / "params.yaml").write_text("train:\n  epochs: 20\n")
    assert git_revision() == f"{revision}+dirty"


def test_the_experiment_is_the_one_whose_dvc_lock_holds_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    submission = write(tmp_path / "submission.csv", ["ImageId", "Label"], [(1, 3)])
    assert experiment_of(submission, environ={}) == ""  # not a git repository
    (tmp_path / "params.yaml").write_text("train:\n  epochs: 10\n")
    commit_all_but_the_submission(tmp_path)
    baseline = git(tmp_path, "rev-parse", "HEAD")
    md5 = hashlib.md5(submission.read_bytes()).hexdigest()
    for name, lock_md5 in [("lucky-seed", md5), ("other-run", "0" * 32)]:
        lock_file = f"outs:\n- path: submission.csv\n  md5: {lock_md5}\n"
        lock = git(tmp_path, "hash-object", "-w", "--stdin", input=lock_file)
        tree = git(tmp_path, "mktree", input=f"100644 blob {lock}\tdvc.lock\n")
        experiment = git(tmp_path, "commit-tree", tree, "-p", baseline, "-m", name)
        # Where `dvc exp run` keeps an experiment's commit.
        git(tmp_path, "update-ref", f"refs/exps/{baseline[:2]}/{baseline[2:]}/{name}", experiment)
    assert experiment_of(submission, environ={}) == "lucky-seed"
    assert experiment_of(submission, environ={"DVC_EXP_NAME": "named-by-dvc"}) == "named-by-dvc"
