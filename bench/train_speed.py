"""Time a recipe's training steps at several batch sizes, and the validation pass after each epoch.

Two ideas are measured here before an accuracy trial is spent on them: a larger batch (are more
images/s to be had on this machine?) and skipping the per-epoch validation where nothing watches
it (what share of an epoch is it?). Each timing fits the recipe's model, compiled as the train
stage compiles it, on --images real training digits, after one untimed pass that builds the
graph; then it evaluates the validation split at the same batch size, as fit does after each
epoch. The batch sizes take turns over --runs rounds, so a swing in the machine's speed falls on
all of them alike. The digits are the ones bench/recipes.py prepared from the real zip.

    python bench/recipes.py fast --seeds 45    # prepares the holdouts under --out
    python bench/train_speed.py champion --batch-sizes 64 128 256 --runs 3
"""

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recipe", help="a file in recipes/, its base variant")
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[64, 128, 256])
    parser.add_argument("--images", type=int, default=6400, help="training digits a timing")
    parser.add_argument("--runs", type=int, default=3, help="rounds over the batch sizes")
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "results", help="bench/recipes.py's --out")
    args = parser.parse_args()
    # After the arguments, so that --help answers at once: they load TensorFlow.
    from src import config, device_policy
    from src.prepared_data import load_split
    from src.training import Batches, ShuffledBatches, compiled_model

    params = config.load(ROOT / "params.yaml", {"recipe": args.recipe}).member_train("base")
    policy = device_policy.precision_policy(params.precision)
    train, val = (load_split(args.results / "holdouts" / f"{split}.npz") for split in ("train", "val"))
    setups = {}
    for batch in args.batch_sizes:
        steps = args.images // batch
        model = compiled_model(params, batch, steps, policy)
        batches = ShuffledBatches(train["x"][: steps * batch], train["y"][: steps * batch], batch, seed=0)
        validation = Batches(val["x"], val["y"], batch)
        model.fit(batches, epochs=1, verbose=0)
        model.evaluate(validation, verbose=0)
        setups[batch] = model, batches, validation
    rates = {batch: [] for batch in setups}
    validation_seconds = {batch: [] for batch in setups}
    for _ in range(args.runs):
        for batch, (model, batches, validation) in setups.items():
            start = time.perf_counter()
            model.fit(batches, epochs=1, verbose=0)
            rates[batch].append(len(batches) * batch / (time.perf_counter() - start))
            start = time.perf_counter()
            model.evaluate(validation, verbose=0)
            validation_seconds[batch].append(time.perf_counter() - start)

    first = args.batch_sizes[0]
    print(
        f"{args.recipe}: {params.arch}, {policy}; an epoch trains {len(train['y'])} digits and validates "
        f"{len(val['y'])}\n\n| batch | images/s, each run | best vs batch {first} | validation pass (s), best "
        "| its share of an epoch |\n| --- | --- | --- | --- | --- |"
    )
    for batch in setups:
        best_rate, best_validation = max(rates[batch]), min(validation_seconds[batch])
        epoch_seconds = len(train["y"]) / best_rate + best_validation
        print(
            f"| {batch} | {' '.join(f'{rate:.0f}' for rate in rates[batch])} | {best_rate / max(rates[first]):.2f}x "
            f"| {best_validation:.1f} | {best_validation / epoch_seconds:.1%} |"
        )


if __name__ == "__main__":
    main()
