"""Time the pipeline, stage by stage, on the real competition data, from a clean clone.

The real `kaggle` client downloads ../shared/data/digit-recognizer.zip from the local
Kaggle-speaking server in tests/, so the run is the one a user with credentials gets.

    python bench/real_data_repro.py                   # `dvc repro` with params.yaml as it is
    python bench/real_data_repro.py --recipe champion_long --seeds 42 43 44 45 --final-fit \\
        --workdir ../champion-clone                   # the README's champion lines, resumable

With --recipe it runs the recipe's `dvc exp run` lines (bench/recipes.py), then with
--final-fit the final fit's. With --workdir the clone is kept, and the time each stage took
is written to <workdir>.times.json as it goes: run the same line again after a stop, and it
goes on where it stopped (DVC restores finished stages, train resumes from its backups) and
adds up the time of every attempt.
"""

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))
from kaggle_server import FakeKaggle  # noqa: E402
from recipes import exp_run_command  # noqa: E402

STAGE_STARTS = re.compile(r"^Running stage '([^']+)'")


def commands(recipe, seeds, variants, final_fit):
    """The pipeline's commands, as a user types them, paired with a name for the timings."""
    if not recipe:
        return [("repro", "dvc repro")]
    lines = [(recipe, exp_run_command(recipe, seeds, variants))]
    if final_fit:
        lines.append((f"{recipe}-final-fit", exp_run_command(recipe, seeds, variants, final_fit=True)))
    return lines


def timed_run(command, clone, env, timings, save):
    """Run one command, echoing its output, and add each stage's wall time to timings as it goes."""
    child = subprocess.Popen(
        command, shell=True, cwd=clone, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    )
    stage, since = "set-up", time.perf_counter()
    for line in child.stdout:
        print(line, end="", flush=True)
        now = time.perf_counter()
        # Each line books the time since the last one, so a killed attempt loses at most a line's worth.
        timings[stage] = timings.get(stage, 0.0) + now - since
        since = now
        started = STAGE_STARTS.match(line)
        if started:
            stage = started.group(1)
        save()
    timings[stage] = timings.get(stage, 0.0) + time.perf_counter() - since
    save()
    if child.wait():
        raise subprocess.CalledProcessError(child.returncode, command)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--zip", default=ROOT.parent / "shared" / "data" / "digit-recognizer.zip", type=Path)
    parser.add_argument("--recipe", help="a file in recipes/, run with its `dvc exp run` line")
    parser.add_argument("--seeds", nargs="+", type=int, help="with --recipe: the ensemble's seeds")
    parser.add_argument("--variants", nargs="+", help="with --recipe: the variants each seed trains")
    parser.add_argument("--final-fit", action="store_true", help="with --recipe: then its final fit")
    parser.add_argument("--workdir", type=Path, help="keep the clone here, and resume in it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, FakeKaggle(args.zip.read_bytes()) as kaggle:
        clone = args.workdir.resolve() if args.workdir else Path(tmp) / "clone"
        if not clone.exists():
            subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        times_file = clone.with_name(clone.name + ".times.json")
        record = json.loads(times_file.read_text()) if args.workdir and times_file.exists() else {}
        save = (lambda: times_file.write_text(json.dumps(record, indent=2))) if args.workdir else (lambda: None)
        # Unbuffered: the stages' lines arrive as they are printed, so each is booked to its stage.
        env = {**os.environ, **kaggle.client_env(), "HOME": tmp, "KAGGLE_CONFIG_DIR": tmp, "PYTHONUNBUFFERED": "1"}
        env.pop("KAGGLE_API_TOKEN", None)
        # With HOME a fresh folder git knows no one, and `dvc exp run` commits in the clone.
        env.update(
            {
                f"GIT_{role}_{field}": value
                for role in ("AUTHOR", "COMMITTER")
                for field, value in (("NAME", "bench"), ("EMAIL", "bench@localhost"))
            }
        )
        for name, command in commands(args.recipe, args.seeds, args.variants, args.final_fit):
            entry = record.setdefault(name, {"command": command, "done": False, "attempts": 0, "seconds": {}})
            if entry["done"]:
                continue
            entry["attempts"] += 1
            timed_run(command, clone, env, entry["seconds"], save)
            entry["done"] = True
            entry["val"] = json.loads((clone / "eval" / "metrics.json").read_text())["val"]
            save()
        start = time.perf_counter()
        subprocess.run(["dvc", "repro"], cwd=clone, env=env, check=True, capture_output=True)
        no_op = time.perf_counter() - start
        submission = (clone / "submissions" / "submission.csv").read_bytes()
    for entry in record.values():
        val = entry["val"]  # after a final fit, a split the models trained on
        print(
            f"\n{entry['command']}\n{entry['attempts']} attempt(s); validation accuracy {val['accuracy']:.4%} "
            f"({val['errors']} errors in {val['images']})\n\n| stage | wall time (s) |\n| --- | --- |"
        )
        for stage, seconds in entry["seconds"].items():
            print(f"| {stage} | {seconds:.1f} |")
        print(f"| all | {sum(entry['seconds'].values()):.1f} |")
    rows = submission.count(b"\n") - 1
    print(
        f"\n`dvc repro` with nothing to do: {no_op:.1f} s; submission rows {rows}, "
        f"sha256 {hashlib.sha256(submission).hexdigest()}"
    )


if __name__ == "__main__":
    main()
