"""Train the recipes in recipes/ on the real train.csv and score them on the pipeline's two holdouts.

The holdouts are the `prepare` stage's validation split, on which recipes are compared and
chosen, and its sealed split, which nothing trains on and no choice looks at: its column is
the estimate that choosing has not bent (params.yaml `prepare`). Schedules other than plateau
never look at the validation split while training either. Each run is
a child process calling the `train` stage's own function, so that its peak memory is its
own. Finished runs are kept under --out and skipped when asked again, so a long
benchmark can be stopped and resumed, and ensembles can grow a member at a time.

    python bench/recipes.py                        # every recipe, one seed each
    python bench/recipes.py champion --seeds 1 2 3 4 5
    python bench/recipes.py fast --seeds 1 2 3 --tta-shift 1   # also with test-time augmentation
    python bench/recipes.py champion_long --variants base45 slant upright plain   # the mix
    python bench/recipes.py --command champion --seeds 42 43 44 45   # its `dvc exp run` line (--final-fit too)
    python bench/recipes.py gpu --seeds 1 2 3 --jobs 3   # a GPU machine: runs side by side

It prints one table row per run and per ensemble: accuracy, errors and Clopper-Pearson 95%
intervals on both holdouts,
training wall time and its ratio to the seed CNN's, images/s, wall time to 99.0%, 99.5% and
99.7% validation accuracy, peak RSS and the device. --precision trains and scores in a
precision other than the recipe's, for comparing them. Where the recipe sets `ensemble.tta_shift`,
or with --tta-shift, each of those rows is followed by one scored with that test-time
augmentation, as `evaluate` scores it.
"""

import argparse
import dataclasses
import json
import resource
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
THRESHOLDS = (0.990, 0.995, 0.997)
sys.path.insert(0, str(ROOT))
from src import config  # noqa: E402  (this script runs from bench/, and config imports no TensorFlow)

RECIPES = config.recipe_names(ROOT / "recipes")
BASELINE = "seed_cnn"
# The README's champions: a recipe and the members it trains (variants x seeds).
CHAMPION = ("champion", ["base"], [42, 43, 44, 45])
MIX = ("champion_long", ["base45", "slant", "upright", "plain"], [42, 43, 44, 45])


def recipe_params(recipe, variants=None, precision=None):
    """params.yaml with the recipe's file applied, as the pipeline reads them after `-S recipe=<recipe>`, and
    these ensemble.variants and train and ensemble precision when given: a config.Params."""
    params = config.load(
        ROOT / "params.yaml", {"recipe": recipe, **({"ensemble.variants": variants} if variants else {})}
    )
    if not precision:
        return params
    # After the recipe's changes, which a -S override would not outlast.
    return dataclasses.replace(
        params,
        train=dataclasses.replace(params.train, precision=precision),
        ensemble=dataclasses.replace(params.ensemble, precision=precision),
    )


def exp_run_command(recipe, seeds=None, variants=None, final_fit=False):
    """The `dvc exp run` line that trains the recipe in the pipeline, with these members when they are not
    params.yaml's (by the name of an `ensembles` entry that has them and changes nothing else); with final_fit,
    on all of train.csv."""
    params = config.load(ROOT / "params.yaml")
    ensemble = params.ensemble
    members = dataclasses.replace(
        ensemble, seeds=tuple(seeds or ensemble.seeds), variants=tuple(variants or ensemble.variants)
    )
    named = [name for name, entry in params.ensembles.items() if entry == members]
    settings = [f"recipe={recipe}"]
    if members != ensemble and named:
        settings.append(f"'ensemble=${{ensembles.{named[0]}}}'")
    else:
        if members.variants != ensemble.variants:
            settings.append(f"'ensemble.variants=[{','.join(members.variants)}]'")
        if members.seeds != ensemble.seeds:
            settings.append(f"'ensemble.seeds=[{','.join(map(str, members.seeds))}]'")
    if final_fit:
        settings.append("train.final_fit=true")
        train = recipe_params(recipe, variants).train
        if train.schedule == "plateau" and train.reduce_lr.monitor.startswith("val_"):
            settings.append("train.reduce_lr.monitor=loss")  # the validation split is trained on
    return "dvc exp run " + " ".join(f"-S {setting}" for setting in settings)


def prepare_holdout(zip_path, out_dir):
    """The prepare stage's splits of the competition zip, in out_dir."""
    from src.prepare import prepare

    raw = out_dir / "raw"
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(raw)
    prepare(raw, out_dir / "prepared", recipe_params(BASELINE).prepare)
    return out_dir / "prepared"


def run_one(recipe, variant, seed, prepared, out, side_by_side, precision):
    """Child process: train one variant of a recipe from one seed, in the recipe's precision or this one; write
    its model, both holdouts' probabilities and its figures."""
    import keras

    from src.device_policy import device_name, precision_policy
    from src.training import train

    class EpochClock(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            curve.append((time.time(), logs["val_accuracy"]))

    params = recipe_params(recipe, precision=precision).member_train(variant)
    curve = []  # (time, holdout accuracy) after each epoch
    start = time.time()  # before the model is built: time to accuracy includes the set-up
    with tempfile.TemporaryDirectory() as tmp:
        train(
            prepared / "train.npz",
            prepared / "val.npz",
            out / "model.keras",
            Path(tmp) / "live",
            params,
            seed,
            Path(tmp) / "backup",
            callbacks=[EpochClock()],
        )
    wall = time.time() - start
    for split in HOLDOUTS:
        images = np.load(prepared / f"{split}.npz")["x"]
        np.save(out / f"{split}-probabilities.npy", holdout_probabilities(recipe, out, images, 0, precision))
    images = len(np.load(prepared / "train.npz")["y"]) * params.epochs
    result = {
        "recipe": recipe,
        "variant": variant,
        "seed": seed,
        "epochs": params.epochs,
        "train_seconds": wall,
        "images_per_second": images / wall,
        "seconds_to": {
            f"{t:.3f}": next((when - start for when, accuracy in curve if accuracy >= t), None) for t in THRESHOLDS
        },
        "curve": curve,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "precision": precision_policy(params.precision),
        "device": device_name()
        + f", {precision_policy(params.precision)}"
        + (f", {side_by_side} runs side by side" if side_by_side > 1 else ""),
    }
    (out / "result.json").write_text(json.dumps(result, indent=2))


def run_all(recipe, variants, seeds, prepared, results, jobs, precision):
    """[(result, {holdout: probabilities})] per member, one for each variant (params.yaml's ensemble.variants
    when None) and each seed, training the missing runs up to `jobs` at a time.

    Side by side suits a GPU, which one small net leaves mostly idle; the table says so, as
    each run's timing then shares the device.
    """
    members = recipe_members(recipe, variants, seeds)
    outs = [run_dir(results, recipe, variant, seed, precision) for variant, seed in members]
    missing = [(member, out) for member, out in zip(members, outs, strict=True) if not finished(out)]
    side_by_side = min(jobs, len(missing))
    running = []
    for (variant, seed), out in missing:
        out.mkdir(parents=True, exist_ok=True)
        if len(running) == side_by_side:
            wait_for(running.pop(0))
        running.append(
            subprocess.Popen(
                [
                    sys.executable,
                    __file__,
                    "--child",
                    recipe,
                    variant,
                    str(seed),
                    str(prepared),
                    str(out),
                    str(side_by_side),
                    precision or "",
                ],
                cwd=ROOT,
            )
        )
    for child in running:
        wait_for(child)
    return [
        (
            json.loads((out / "result.json").read_text()),
            {split: np.load(out / f"{split}-probabilities.npy") for split in HOLDOUTS},
        )
        for out in outs
    ]


def finished(out):
    """Whether the run in `out` is done: runs from before the sealed holdout trained on it, and go again."""
    return (out / "result.json").exists() and (out / "sealed-probabilities.npy").exists()


def recipe_members(recipe, variants, seeds):
    """[(variant, seed)]: the members of the recipe trained as these variants from these seeds, as the pipeline
    names them; params.yaml's variants by default."""
    return [(variant, seed) for variant in recipe_params(recipe, variants).ensemble.variants for seed in seeds]


def run_dir(results, recipe, variant, seed, precision=None):
    """Where one member's run keeps its model and figures: named as the pipeline names the member, and its
    precision when it is not the recipe's."""
    return results / f"{recipe}-{variant}-{seed}{f'-{precision}' if precision else ''}"


def wait_for(child):
    if child.wait():
        raise subprocess.CalledProcessError(child.returncode, child.args)


def rows_tta_shift(recipe, tta_shift):
    """The test-time augmentation the second row of each run scores with: the one asked for, else the
    recipe's own; 0: none."""
    return recipe_params(recipe).ensemble.tta_shift if tta_shift is None else tta_shift


def holdout_probabilities(recipe, out, holdout_images, tta_shift, precision=None):
    """The run's saved model's softmax on a holdout, computed as the evaluate stage computes it."""
    from src.device_policy import precision_policy
    from src.ensemble import member_probabilities

    policy = precision_policy(recipe_params(recipe, precision=precision).ensemble.precision)
    return member_probabilities([out / "model.keras"], holdout_images, 1024, tta_shift, policy)[0]


def tta_probabilities(recipe, result, holdouts, results, tta_shift, precision):
    """{holdout: the run's probabilities with test-time augmentation}, from its saved model."""
    out = run_dir(results, recipe, result["variant"], result["seed"], precision)
    augmented = {}
    for split, (images, _) in holdouts.items():
        cached = out / f"{split}-probabilities-tta{tta_shift}.npy"
        if not cached.exists():
            np.save(cached, holdout_probabilities(recipe, out, images, tta_shift, precision))
        augmented[split] = np.load(cached)
    return augmented


HOLDOUTS = ("val", "sealed")
HEADER = (
    "| run | val accuracy (errors; 95% interval) | sealed accuracy (errors; 95% interval) | train wall (s) | "
    "vs seed CNN | images/s | s to 99.0% | s to 99.5% | s to 99.7% | peak RSS (MiB) | device |\n" + "| --- " * 11 + "|"
)


def row(name, result, scores, baseline):
    """A table row; scores are src.scoring.score's for each holdout, as the evaluate stage reports them, and
    baseline the seed CNN's result, or None."""

    def seconds(t):
        """When the run reached accuracy t; an ensemble's row records none."""
        if f"{t:.3f}" not in result["seconds_to"]:
            return "-"
        value = result["seconds_to"][f"{t:.3f}"]
        return "not reached" if value is None else f"{value:.0f}"

    ratio = f"{result['train_seconds'] / baseline['train_seconds']:.2f}x" if baseline else "-"
    held_out = " | ".join(
        f"{scores[split]['accuracy']:.2%} ({scores[split]['errors']}; "
        f"{scores[split]['accuracy_95']['low']:.2%}-{scores[split]['accuracy_95']['high']:.2%})"
        for split in HOLDOUTS
    )
    return (
        f"| {name} | {held_out} | {result['train_seconds']:.0f} | {ratio} | {result['images_per_second']:.0f} | "
        + " | ".join(seconds(t) for t in THRESHOLDS)
        + f" | {result['peak_rss_mib']:.0f} | {result['device']} |"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "recipes", nargs="*", default=list(RECIPES), help=f"any of {', '.join(RECIPES)}; all by default"
    )
    parser.add_argument(
        "--seeds", nargs="+", type=int, default=[42], help="one run per seed; 2+ also score the ensemble"
    )
    parser.add_argument("--variants", nargs="+", help="the variants each seed trains; params.yaml's by default")
    parser.add_argument(
        "--precision", choices=["float32", "mixed_bfloat16", "mixed_float16"], help="in place of the recipe's"
    )
    parser.add_argument("--zip", type=Path, default=ROOT.parent / "shared" / "data" / "digit-recognizer.zip")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results", help="finished runs, reused")
    parser.add_argument(
        "--tta-shift", type=int, help="also score with this test-time augmentation; the recipe's by default"
    )
    parser.add_argument("--command", choices=RECIPES, help="print the recipe's `dvc exp run` line and stop")
    parser.add_argument("--final-fit", action="store_true", help="with --command: the final fit's line")
    parser.add_argument("--jobs", type=int, default=1, help="runs trained side by side (on a GPU)")
    parser.add_argument("--child", nargs=7, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if set(args.recipes) - set(RECIPES):
        parser.error(
            f"unknown recipe {sorted(set(args.recipes) - set(RECIPES))[0]!r}; choose from {', '.join(RECIPES)}"
        )
    if args.child:
        recipe, variant, seed, prepared, out, side_by_side, precision = args.child
        return run_one(recipe, variant, int(seed), Path(prepared), Path(out), int(side_by_side), precision or None)
    if args.command:
        return print(exp_run_command(args.command, args.seeds, args.variants, args.final_fit))
    from src.scoring import score  # after the quick answers: it loads TensorFlow

    prepared = args.out / "holdouts"
    if not (prepared / "sealed.npz").exists():
        prepare_holdout(args.zip, args.out / "holdouts-work")
        (args.out / "holdouts-work" / "prepared").rename(prepared)
    holdouts = {split: tuple(np.load(prepared / f"{split}.npz")[key] for key in "xy") for split in HOLDOUTS}
    print(HEADER, flush=True)
    baseline_file = run_dir(args.out, BASELINE, "base", args.seeds[0]) / "result.json"
    baseline = json.loads(baseline_file.read_text()) if baseline_file.exists() else None

    def scores(probabilities):
        return {split: score(holdouts[split][1], probabilities[split]) for split in HOLDOUTS}

    for recipe in args.recipes:
        runs = run_all(recipe, args.variants, args.seeds, prepared, args.out, args.jobs, args.precision)
        if recipe == BASELINE and not args.precision:
            baseline = runs[0][0]
        compare = recipe != BASELINE and baseline
        tta_shift = rows_tta_shift(recipe, args.tta_shift)
        augmented = [
            tta_probabilities(recipe, result, holdouts, args.out, tta_shift, args.precision) if tta_shift else None
            for result, _ in runs
        ]
        for (result, probabilities), tta in zip(runs, augmented, strict=True):
            name = f"{recipe} ({result['variant']}, seed {result['seed']}, {result['precision']})"
            print(row(name, result, scores(probabilities), compare), flush=True)
            if tta is not None:
                print(row(f"{name} + TTA {tta_shift} px", result, scores(tta), compare), flush=True)
        if len(runs) > 1:
            ensemble = {
                "train_seconds": sum(r["train_seconds"] for r, _ in runs),
                "images_per_second": np.mean([r["images_per_second"] for r, _ in runs]),
                "seconds_to": {},
                "peak_rss_mib": max(r["peak_rss_mib"] for r, _ in runs),
                "device": runs[0][0]["device"],
            }
            name = f"{recipe} ensemble of {len(runs)}"
            averaged = {split: np.mean([p[split] for _, p in runs], axis=0) for split in HOLDOUTS}
            print(row(name, ensemble, scores(averaged), compare), flush=True)
            if tta_shift:
                averaged = {split: np.mean([t[split] for t in augmented], axis=0) for split in HOLDOUTS}
                print(row(f"{name} + TTA {tta_shift} px", ensemble, scores(averaged), compare), flush=True)


if __name__ == "__main__":
    main()
