"""Time `dvc repro`, stage by stage, on the real competition data, from a clean clone.

The real `kaggle` client downloads ../shared/data/digit-recognizer.zip from the local
Kaggle-speaking server in tests/, so the run is the one a user with credentials gets.

    python bench/real_data_repro.py
"""

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from kaggle_server import FakeKaggle  # noqa: E402

STAGES = ["source", "download", "prepare", "train", "evaluate", "predict"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zip", default=ROOT.parent / "shared" / "data" / "digit-recognizer.zip", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, FakeKaggle(args.zip.read_bytes()) as kaggle:
        clone = Path(tmp) / "clone"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        env = {**os.environ, **kaggle.client_env(), "HOME": tmp, "KAGGLE_CONFIG_DIR": tmp}
        env.pop("KAGGLE_API_TOKEN", None)
        timings = {}
        for stage in STAGES:
            start = time.perf_counter()
            subprocess.run(["dvc", "repro", "--single-item", stage], cwd=clone, env=env, check=True)
            timings[stage] = time.perf_counter() - start
        start = time.perf_counter()
        subprocess.run(["dvc", "repro"], cwd=clone, env=env, check=True, capture_output=True)
        timings["no-op repro"] = time.perf_counter() - start
        metrics = json.loads((clone / "eval" / "metrics.json").read_text())
        submission = (clone / "submissions" / "submission.csv").read_bytes()
    print("\n| stage | wall time (s) |\n| --- | --- |")
    for stage, seconds in timings.items():
        print(f"| {stage} | {seconds:.1f} |")
    rows = submission.count(b"\n") - 1
    print(f"\nvalidation accuracy {metrics['val']['accuracy']:.4%} ({metrics['val']['errors']} errors in "
          f"{metrics['val']['images']}), submission rows {rows}, sha256 {hashlib.sha256(submission).hexdigest()}")


if __name__ == "__main__":
    main()
