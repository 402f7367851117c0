"""Time the predict stage's work on the 28,000 test digits: model load, inference, checked CSV.

Each try calls `src.predict.predict`, as the stage does, with one model. The precisions and
batch sizes take turns, so a swing in the machine's speed falls on all of them alike. The
test digits and sample submission are the ones bench/recipes.py prepared from the real zip.

    python bench/recipes.py fast --seeds 45          # trains the model, prepares the data
    python bench/predict_speed.py bench/results/fast-base-45/model.keras --runs 5
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path, help="a trained member, a .keras file")
    parser.add_argument("--runs", type=int, default=5, help="tries of each setting")
    parser.add_argument("--policies", nargs="+", default=["float32", "mixed_bfloat16"])
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[256, 1024])
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "results", help="bench/recipes.py's --out")
    args = parser.parse_args()
    # After the arguments, so that --help answers at once: they load TensorFlow.
    from src.device_policy import precision_policy
    from src.predict import predict

    test = args.results / "holdouts" / "test.npz"
    sample = args.results / "holdouts-work" / "raw" / "sample_submission.csv"
    settings = [(policy, batch) for policy in args.policies for batch in args.batch_sizes]
    times = {setting: [] for setting in settings}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "submission.csv"
        predict([args.model], test, sample, "kaggle", out, 1024)  # a first run warms the file caches
        for _ in range(args.runs):
            for policy, batch in settings:
                start = time.perf_counter()
                predict([args.model], test, sample, "kaggle", out, batch, policy=policy)
                times[policy, batch].append(time.perf_counter() - start)
    print(
        f"ensemble.precision auto is {precision_policy('auto')} here\n\n"
        "| policy | batch | seconds, each run | fastest-slowest |\n| --- | --- | --- | --- |"
    )
    for (policy, batch), seconds in times.items():
        print(
            f"| {policy} | {batch} | {' '.join(f'{s:.2f}' for s in seconds)} | {min(seconds):.2f}-{max(seconds):.2f} |"
        )


if __name__ == "__main__":
    main()
