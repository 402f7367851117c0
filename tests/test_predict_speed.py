"""bench/predict_speed.py times the predict stage's work on the test digits bench/recipes.py prepared."""

import subprocess
import sys

from competition_data import competition_files
from workdir import ROOT


def test_it_prints_each_setting_s_times(trained_model, prepared_dir, tmp_path):
    (tmp_path / "holdouts").symlink_to(prepared_dir)
    competition_files(tmp_path / "holdouts-work" / "raw", test_rows=100)  # its sample_submission.csv
    run = subprocess.run(
        [sys.executable, ROOT / "bench" / "predict_speed.py", trained_model, "--runs", "2"]
        + ["--policies", "float32", "--batch-sizes", "32", "64", "--results", tmp_path],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    rows = [line.strip("| ").split(" | ") for line in run.stdout.splitlines()[4:]]
    assert [row[:2] for row in rows] == [["float32", "32"], ["float32", "64"]], run.stdout
    assert all(len(row[2].split()) == 2 for row in rows), run.stdout
