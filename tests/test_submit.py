import csv
import hashlib
import io
import json
import math
import signal
import subprocess
import sys
import zipfile
from datetime import UTC, datetime

import pytest

from competition_data import csv_text
from kaggle_server import Failure, Outcome
from src.leaderboard import COLUMNS
from src.submission import provenance, provenance_path, sha256_of
from workdir import ROOT, assert_no_secret, ctrl_c_as_in_a_terminal, git, make_workdir, run_module


def write(path, header, rows):
    path.write_text(csv_text(header, rows))
    return path


@pytest.fixture(autouse=True)
def competition_with_five_test_rows(kaggle_server):
    """The local Kaggle serves a competition whose sample_submission.csv has project()'s 5 rows."""
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("sample_submission.csv", csv_text(["ImageId", "Label"], [(i, 0) for i in range(1, 6)]))
    kaggle_server.zip_bytes = archive.getvalue()


def project(tmp_path):
    """A folder with params.yaml, a 5-row sample_submission.csv and a valid submission.csv for it."""
    workdir = make_workdir(tmp_path / "project")
    write(workdir / "sample_submission.csv", ["ImageId", "Label"], [(i, 0) for i in range(1, 6)])
    return workdir, write(workdir / "submission.csv", ["ImageId", "Label"], [(i, i % 10) for i in range(1, 6)])


def submit_arguments(submission):
    """src.submit's arguments, as the tests run it: a quick poll."""
    return ["-f", submission, "--sample", "sample_submission.csv", "-m", "seed CNN", "--poll", "0.05"]


def run_submit(workdir, submission, env, *options):
    return run_module(workdir, "src.submit", *submit_arguments(submission), *options, env=env)


def submit(tmp_path, env):
    workdir, submission = project(tmp_path)
    return run_submit(workdir, submission, env), submission


def test_submit_uploads_the_file_and_prints_kaggles_answer(tmp_path, kaggle_server, kaggle_env):
    result, submission = submit(tmp_path, kaggle_env)
    assert result.returncode == 0, result.stderr
    assert kaggle_server.uploads == [submission.read_bytes()]
    assert kaggle_server.calls == [
        "DownloadDataFile",
        "GetSubmissionLimits",
        "StartSubmissionUpload",
        "CreateSubmission",
        "ListSubmissions",
    ]
    assert kaggle_server.bodies[3]["submissionDescription"] == "seed CNN"
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
    provenance_path(submission).write_text(provenance(submission, "sample", rows=5))
    before = submission.read_bytes()
    result = run_submit(workdir, submission, kaggle_env)
    assert result.returncode != 0
    [message] = result.stderr.strip().splitlines()
    assert message.startswith(f"submit: error: {submission} was built from the offline sample, not the competition")
    assert "set up Kaggle credentials" in message and "`dvc repro`" in message
    assert kaggle_server.calls == []
    assert submission.read_bytes() == before


@pytest.mark.parametrize(
    "source, edited", [("kaggle", False), ("sample", True)], ids=["built-from-kaggle", "sample-built-then-edited"]
)
def test_submit_uploads_a_file_the_sidecar_does_not_tie_to_the_sample(
    tmp_path, kaggle_server, kaggle_env, source, edited
):
    workdir, submission = project(tmp_path)
    provenance_path(submission).write_text(provenance(submission, source, rows=5))
    if edited:  # the sidecar's sha256 no longer matches: it says nothing about this file
        write(submission, ["ImageId", "Label"], [(i, 9) for i in range(1, 6)])
    result = run_submit(workdir, submission, kaggle_env)
    assert result.returncode == 0, result.stderr
    assert kaggle_server.uploads == [submission.read_bytes()]


def test_submit_says_which_file_is_missing(tmp_path, kaggle_server, kaggle_env):
    workdir = make_workdir(tmp_path / "project")
    write(workdir / "sample_submission.csv", ["ImageId", "Label"], [(i, 0) for i in range(1, 6)])
    result = run_module(
        workdir,
        "src.submit",
        "-f",
        "submissions/submission.csv",
        "--sample",
        "sample_submission.csv",
        "-m",
        "x",
        env=kaggle_env,
    )
    assert result.returncode == 1
    assert result.stderr == "submit: error: submissions/submission.csv does not exist; `dvc repro` makes it\n"
    assert kaggle_server.calls == []


def test_a_refused_submission_is_retried_but_a_server_error_is_not(tmp_path, kaggle_server, kaggle_env):
    kaggle_server.failures["CreateSubmission"] = Failure(429, "Too many requests", times=1, retry_after="0")
    result, submission = submit(tmp_path / "refused", kaggle_env)
    assert result.returncode == 0, result.stderr
    assert "submit: Kaggle answered HTTP 429; retrying in 0 s (attempt 2 of 5)" in result.stderr
    upload = ["StartSubmissionUpload", "CreateSubmission"]
    assert kaggle_server.calls == ["DownloadDataFile", "GetSubmissionLimits", *upload, *upload, "ListSubmissions"]

    # After a 5xx Kaggle may have the submission already: trying again could spend a second one.
    kaggle_server.calls.clear()
    kaggle_server.failures["CreateSubmission"] = Failure(503, "Unavailable")
    result, submission = submit(tmp_path / "failed", kaggle_env)
    assert result.returncode == 1
    assert kaggle_server.calls == [
        "DownloadDataFile",
        "GetSubmissionLimits",
        "StartSubmissionUpload",
        "CreateSubmission",
    ]
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


def test_a_scored_submission_is_recorded_with_what_made_it_and_the_next_is_appended(
    tmp_path, kaggle_server, kaggle_env
):
    workdir, submission = project(tmp_path)
    revision = commit_all_but_the_submission(workdir)
    env = {**kaggle_env, "DVC_EXP_NAME": ""}
    kaggle_server.pending_polls = 1
    before = datetime.now(UTC).replace(microsecond=0)
    result = run_submit(workdir, submission.name, env)
    assert result.returncode == 0, result.stderr
    assert kaggle_server.calls == [
        "DownloadDataFile",
        "GetSubmissionLimits",
        "StartSubmissionUpload",
        "CreateSubmission",
        "ListSubmissions",
        "ListSubmissions",
    ]
    assert (
        "submit: Kaggle scored submission 1001: public score 0.99123 (recorded in submissions/leaderboard.csv)"
        in result.stdout
    )
    [row] = leaderboard(workdir)
    assert list(row) == list(COLUMNS)
    submitted_at = datetime.fromisoformat(row.pop("submitted_at").replace("Z", "+00:00"))
    assert before <= submitted_at <= datetime.now(UTC)
    params = json.loads(row.pop("params"))
    assert params["train.epochs"] == 10 and params["data.competition"] == "digit-recognizer"
    assert list(params) == sorted(params)
    assert row == {
        "ref": "1001",
        "status": "COMPLETE",
        "public_score": "0.99123",
        "error": "",
        "message": "seed CNN",
        "file": "submission.csv",
        "sha256": hashlib.sha256(submission.read_bytes()).hexdigest(),
        "git_rev": revision,
        "experiment": "",
        "left_today": "4",  # of the fake Kaggle's 5 a day
    }
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
    assert (second_row["ref"], second_row["public_score"], second_row["git_rev"]) == (
        "1002",
        "0.98000",
        f"{revision}+dirty",
    )
    assert json.loads(second_row["params"])["train.epochs"] == 20
    assert_no_secret(env, text, result.stdout + result.stderr)


def test_a_submission_kaggle_cannot_score_is_recorded_as_error_and_fails(tmp_path, kaggle_server, kaggle_env):
    kaggle_server.outcome = Outcome("ERROR", error="Submission has 1000 rows, expected 28000")
    env = {**kaggle_env, "GIT_CEILING_DIRECTORIES": str(tmp_path)}  # no git repository: no revision
    result, submission = submit(tmp_path, env)
    assert result.returncode == 1
    [message] = result.stderr.strip().splitlines()
    assert message == (
        "submit: error: Kaggle could not score submission 1001: Submission has 1000 rows, "
        "expected 28000 (recorded in submissions/leaderboard.csv)"
    )
    [row] = leaderboard(submission.parent)
    assert (row["status"], row["public_score"], row["error"]) == (
        "ERROR",
        "",
        "Submission has 1000 rows, expected 28000",
    )
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
    assert (
        "submit: no score from Kaggle within 0.3 s. Submission 1001 is recorded as PENDING in "
        "submissions/leaderboard.csv; `python -m src.submit --refresh` fills in its score later."
    ) in result.stdout
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
    assert message.endswith(
        "Submission 1002 is recorded as PENDING in submissions/leaderboard.csv; "
        "`python -m src.submit --refresh` fills in its score later."
    )
    assert [row["status"] for row in leaderboard(submission.parent)] == ["PENDING"]


def test_ctrl_c_stops_the_wait_and_leaves_the_row_pending(tmp_path, kaggle_server, kaggle_env):
    kaggle_server.pending_polls = math.inf
    workdir, submission = project(tmp_path)
    process = subprocess.Popen(
        [sys.executable, "-m", "src.submit", *map(str, submit_arguments(submission))],
        cwd=workdir,
        env={**kaggle_env, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=ctrl_c_as_in_a_terminal,
    )
    try:
        while "waiting up to 600 s" not in process.stdout.readline():
            assert process.poll() is None, process.stderr.read()
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 1
    assert stderr == (
        "submit: stopped waiting. Submission 1001 is recorded as PENDING in submissions/leaderboard.csv; "
        "`python -m src.submit --refresh` fills in its score later.\n"
    )
    assert [row["status"] for row in leaderboard(workdir)] == ["PENDING"]


@pytest.mark.parametrize(
    "respell",
    [lambda text: text.replace("\n", "\r\n"), lambda text: text + "\n"],
    ids=["CRLF line ends", "a trailing blank line"],
)
def test_a_sample_built_file_is_refused_whatever_its_bytes(tmp_path, kaggle_server, kaggle_env, respell):
    workdir, submission = project(tmp_path)
    provenance_path(submission).write_text(provenance(submission, "sample", rows=5))
    submission.write_bytes(respell(submission.read_text()).encode())
    result = run_submit(workdir, submission, kaggle_env)
    assert result.returncode == 1 and "was built from the offline sample" in result.stderr
    assert kaggle_server.calls == []


def test_a_file_without_the_competitions_row_count_is_refused_before_the_upload(tmp_path, kaggle_server, kaggle_env):
    """The local sample_submission.csv agrees with the file (both the offline sample's), but Kaggle's does not."""
    workdir, submission = project(tmp_path)
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("sample_submission.csv", csv_text(["ImageId", "Label"], [(i, 0) for i in range(1, 9)]))
    kaggle_server.zip_bytes = archive.getvalue()
    result = run_submit(workdir, submission, kaggle_env)
    assert result.returncode == 1
    assert (
        result.stderr
        == f"submit: error: {submission}: line 7, column 1 (ImageId): 5 rows, expected 8, one per test image\n"
    )
    assert kaggle_server.calls == ["DownloadDataFile"] and kaggle_server.uploads == []


def test_submit_says_how_many_submissions_are_left_today_and_records_it(tmp_path, kaggle_server, kaggle_env):
    kaggle_server.daily_limit = 3
    result, submission = submit(tmp_path, kaggle_env)
    assert result.returncode == 0, result.stderr
    assert f"submit: Kaggle takes 3 more submissions today; uploading {submission}" in result.stdout
    with (submission.parent / "submissions" / "leaderboard.csv").open() as file:
        [row] = list(csv.DictReader(file))
    assert row["left_today"] == "2"


def test_submit_refuses_before_uploading_when_none_is_left_today(tmp_path, kaggle_server, kaggle_env):
    kaggle_server.daily_limit = 0
    result, submission = submit(tmp_path, kaggle_env)
    assert result.returncode == 1
    assert result.stderr == (
        "submit: error: Kaggle takes no more submissions to 'digit-recognizer' today (the daily limit is reached); "
        f"{submission} is kept: submit it after 00:00 UTC\n"
    )
    assert kaggle_server.calls == ["DownloadDataFile", "GetSubmissionLimits"] and kaggle_server.uploads == []
