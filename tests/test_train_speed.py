"""bench/train_speed.py times a recipe's training steps at each batch size, and the validation pass."""

import subprocess
import sys

from workdir import ROOT


def test_it_prints_a_row_for_each_batch_size(prepared_dir, tmp_path):
    (tmp_path / "holdouts").symlink_to(prepared_dir)
    run = subprocess.run(
        [sys.executable, ROOT / "bench" / "train_speed.py", "fast", "--batch-sizes", "32", "64"]
        + ["--images", "128", "--runs", "2", "--results", tmp_path],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].startswith("fast: fast_cnn, ") and lines[0].endswith("an epoch trains 400 digits and validates 100")
    rows = [line.strip("| ").split(" | ") for line in lines[4:]]
    assert [row[0] for row in rows] == ["32", "64"] and rows[0][2] == "1.00x", run.stdout
    assert all(len(row[1].split()) == 2 and row[4].endswith("%") for row in rows), run.stdout
