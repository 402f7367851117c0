import hashlib

from competition_data import csv_text
from src.provenance import experiment_of, git_revision, running_experiment
from workdir import git


def write(path, header, rows):
    path.write_text(csv_text(header, rows))
    return path


def commit_all_but_the_submission(repo):
    """Commit every file in repo but submission.csv, a DVC output (git-ignored in the project); the short hash."""
    git(repo, "init", "-q")
    git(repo, "add", "--all", ":!submission.csv")
    git(repo, "commit", "-q", "-m", "commit")
    return git(repo, "rev-parse", "--short", "HEAD")


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


def test_the_running_experiment_is_the_one_dvc_names():
    assert running_experiment({"DVC_EXP_NAME": "fast-1"}) == "fast-1"
    assert running_experiment({}) == ""
