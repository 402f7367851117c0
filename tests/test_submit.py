import pytest

from competition_data import csv_text
from src.prepare import DataError
from src.submit import check_submission
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


def submit(tmp_path, env, *extra):
    workdir = make_workdir(tmp_path / "project")
    submission = write(workdir / "submission.csv", ["ImageId", "Label"], [(i, i % 10) for i in range(1, 6)])
    write(workdir / "sample_submission.csv", ["ImageId", "Label"], [(i, 0) for i in range(1, 6)])
    result = run_module(workdir, "src.submit", "-f", submission, "--sample", "sample_submission.csv",
                        "-m", "seed CNN", *extra, env=env)
    return result, submission


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


def test_submit_refuses_an_invalid_file_before_calling_kaggle(tmp_path, kaggle_server, kaggle_env):
    workdir = make_workdir(tmp_path / "project")
    write(workdir / "sample_submission.csv", ["ImageId", "Label"], [(i, 0) for i in range(1, 6)])
    write(workdir / "submission.csv", ["ImageId", "Label"], [(i, 0) for i in range(1, 4)])
    result = run_module(workdir, "src.submit", "-f", "submission.csv", "--sample", "sample_submission.csv",
                        "-m", "x", env=kaggle_env)
    assert result.returncode != 0
    assert "submission.csv: line 5, column 1 (ImageId): 3 rows, expected 5" in result.stderr
    assert kaggle_server.calls == []
