import hashlib
import json

import yaml

from competition_data import csv_text
from src import config
from src.leaderboard import COLUMNS, append_row, experiment_of, git_revision, read_rows, what_was_submitted
from src.submission import sha256_of
from workdir import ROOT, git


def write(path, header, rows):
    path.write_text(csv_text(header, rows))
    return path


def commit_all_but_the_submission(repo):
    """Commit every file in repo but submission.csv, a DVC output (git-ignored in the project); the short hash."""
    git(repo, "init", "-q")
    git(repo, "add", "--all", ":!submission.csv")
    git(repo, "commit", "-q", "-m", "commit")
    return git(repo, "rev-parse", "--short", "HEAD")


def test_a_row_is_appended_after_a_hand_edited_last_line(tmp_path):
    board = tmp_path / "leaderboard.csv"
    header, empty = ",".join(COLUMNS), "," * (len(COLUMNS) - 2)
    board.write_text(f"{header}\n2024-01-01T00:00:00Z,1{empty}")
    append_row(board, {"ref": "2", "status": "PENDING"})
    assert board.read_text() == f"{header}\n2024-01-01T00:00:00Z,1{empty}\n,2,PENDING{empty[1:]}\n"


def test_a_leaderboard_from_before_a_column_gets_it_and_keeps_every_value(tmp_path):
    board = tmp_path / "leaderboard.csv"
    old_columns = COLUMNS[:-1]
    values = [f"value {i}" for i in range(len(old_columns))]
    board.write_text(",".join(old_columns) + "\n" + ",".join(values) + "\n")
    append_row(board, {"ref": "2", "left_today": 4})
    columns, rows = read_rows(board)
    assert list(columns) == list(COLUMNS)
    assert rows[0] == {**dict(zip(old_columns, values, strict=True)), "left_today": ""}
    assert rows[1]["ref"] == "2" and rows[1]["left_today"] == "4"


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


def test_the_params_column_holds_all_of_params_yaml_by_dotted_name_keys_sorted(tmp_path, monkeypatch):
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    monkeypatch.delenv("DVC_EXP_NAME", raising=False)
    monkeypatch.chdir(tmp_path)
    submission = write(tmp_path / "submission.csv", ["ImageId", "Label"], [(i, i % 10) for i in range(1, 6)])
    params = config.load(ROOT / "params.yaml", {"train.epochs": 20, "ensemble.seeds": [1, 2]})
    row = what_was_submitted(submission, "seed CNN", params)
    column = json.loads(row.pop("params"))
    assert row == {
        "message": "seed CNN",
        "file": str(submission),
        "sha256": sha256_of(submission),
        "git_rev": "",
        "experiment": "",
    }  # not a git repository
    assert list(column) == sorted(column)
    assert column == config.flat(params)
    assert set(column) == set(config.flat(yaml.safe_load((ROOT / "params.yaml").read_text())))
    assert column["train.epochs"] == 20 and column["ensemble.seeds"] == [1, 2]
    assert column["data.competition"] == "digit-recognizer"
