import pytest

from competition_data import csv_text
from src.competition_csv import DataError
from src.submission import built_from_sample, check_submission, sha256_of


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
        (
            ["ImageId", "Label"],
            [(1, 1), (3, 1), (2, 1), (4, 1), (5, 1)],
            r"line 3, column 1 \(ImageId\): 3, expected 2",
        ),
        (["ImageId", "Label"], [(i, 10 if i == 4 else 1) for i in range(1, 6)], r"line 5, column 2 \(Label\): 10 is"),
    ],
)
def test_a_bad_submission_is_named_by_line_and_column(tmp_path, sample, header, rows, message):
    with pytest.raises(DataError, match=message):
        check_submission(write(tmp_path / "s.csv", header, rows), sample)


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
