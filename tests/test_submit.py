import pytest

from competition_data import csv_text
from kaggle_server import Failure
from src.prepare import DataError
from src.submit import built_from_sample, check_submission, sha256_of, write_provenance
from workdir import make_workdir, run_module


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


def run_submit(workdir, submission, env):
    return run_module(workdir, "src.submit", "-f", submission, "--sample", "sample_submission.csv",
                      "-m", "seed CNN", env=env)


def submit(tmp_path, env):
    workdir, submission = project(tmp_path)
    return run_submit(workdir, submission, env), submission


def test_submit_uploads_the_file_and_prints_kaggles_answer(tmp_path, kaggle_server, kaggle_env):
    result, submission = submit(tmp_path, kaggle_env)
    assert result.returncode == 0, result.stderr
    assert kaggle_server.uploads == [submission.read_bytes()]
    assert kaggle_server.calls == ["StartSubmissionUpload", "CreateSubmission"]
    assert kaggle_server.bodies[-1]["submissionDescription"] == "seed CNN"
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
    assert kaggle_server.calls == ["StartSubmissionUpload", "CreateSubmission"] * 2

    # After a 5xx Kaggle may have the submission already: trying again could spend a second one.
    kaggle_server.calls.clear()
    kaggle_server.failures["CreateSubmission"] = Failure(503, "Unavailable")
    result, submission = submit(tmp_path / "failed", kaggle_env)
    assert result.returncode == 1
    assert kaggle_server.calls == ["StartSubmissionUpload", "CreateSubmission"]
    [message] = result.stderr.strip().splitlines()
    assert message.startswith("submit: error: Kaggle's API failed (HTTP 503)")
