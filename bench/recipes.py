"""Train the recipes in recipes/ on the real train.csv and score them on the pipeline's fixed holdout.

The holdout is the `prepare` stage's validation split (params.yaml `prepare`), which no
recipe here trains on; schedules other than plateau never look at it either. Each run is
a child process calling the `train` stage's own function, so that its peak memory is its
own. Finished runs are kept under --out and skipped when asked again, so a long
benchmark can be stopped and resumed, and ensembles can grow a member at a time.

    python bench/recipes.py                        # every recipe, one seed each
    python bench/recipes.py champion --seeds 1 2 3 4 5
    python bench/recipes.py champion --seeds 1 2 3 --tta-shift 1   # also with test-time augmentation
    python bench/recipes.py champion_long --variants base45 slant upright plain   # the mix
    python bench/recipes.py --command champion --seeds 42 43 44 45   # its `dvc exp run` line (--final-fit too)
    python bench/recipes.py gpu --seeds 1 2 3 --jobs 3   # a GPU machine: runs side by side

It prints one table row per run and per ensemble: holdout accuracy and errors, training
wall time, images/s, wall time to 99.0% and 99.5% holdout accuracy, peak RSS, device,
and the speed-ups against the seed CNN's run. With --tta-shift, each of those rows is
followed by one scored with test-time augmentation, as `ensemble.tta_shift` does it.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
THRESHOLDS = (0.990, 0.995)
sys.path.insert(0, str(ROOT))
from src import config  # noqa: E402  (this script runs from bench/, and config imports no TensorFlow)

RECIPES = config.recipe_names(ROOT / "recipes")
BASELINE = "seed_cnn"
# The README's champions: a recipe and the members it trains (variants x seeds).
CHAMPION = ("champion", ["base"], [42, 43, 44, 45])
MIX = ("champion_long", ["base45", "slant", "upright", "plain"], [42, 43, 44, 45])


def recipe_params(recipe, variants=None):
    """params.yaml with the recipe's file applied, as the pipeline reads them after `-S recipe=<recipe>`, and
    these ensemble.variants when given: a config.Params."""
    return config.load(
        ROOT / "params.yaml", {"recipe": recipe, **({"ensemble.variants": variants} if variants else {})}
    )


def exp_run_command(recipe, seeds=None, variants=None, final_fit=False):
    """The `dvc exp run` line that trains the recipe in the pipeline, with these members when they are not
    params.yaml's; with final_fit, on all of train.csv."""
    defaults = config.load(ROOT / "params.yaml").ensemble
    settings = [f"recipe={recipe}"]
    if variants and tuple(variants) != defaults.variants:
        settings.append(f"'ensemble.variants=[{','.join(variants)}]'")
    if seeds and tuple(seeds) != defaults.seeds:
        settings.append(f"'ensemble.seeds=[{','.join(map(str, seeds))}]'")
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


def run_one(recipe, variant, seed, prepared, out, side_by_side):
    """Child process: train one variant of a recipe from one seed; write its model, holdout probabilities and
    figures."""
    import keras

    from src.device_policy import precision_policy
    from src.training import train

    class EpochClock(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            curve.append((time.time(), logs["val_accuracy"]))

    params = recipe_params(recipe).member_train(variant)
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
    np.save(out / "probabilities.npy", holdout_probabilities(recipe, out, np.load(prepared / "val.npz")["x"], 0))
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
        "device": device_name()
        + f", {precision_policy(params.precision)}"
        + (f", {side_by_side} runs side by side" if side_by_side > 1 else ""),
    }
    (out / "result.json").write_text(json.dumps(result, indent=2))


def device_name():
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        return tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU")
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "CPU",
    )
    return f"{cpu}, {len(os.sched_getaffinity(0))} cores"


def run_all(recipe, variants, seeds, prepared, results, jobs):
    """[(result, holdout probabilities)] per member, one for each variant (params.yaml's ensemble.variants when
    None) and each seed, training the missing runs up to `jobs` at a time.

    Side by side suits a GPU, which one small net leaves mostly idle; the table says so, as
    each run's timing then shares the device.
    """
    members = recipe_members(recipe, variants, seeds)
    outs = [run_dir(results, recipe, variant, seed) for variant, seed in members]
    missing = [(member, out) for member, out in zip(members, outs, strict=True) if not (out / "result.json").exists()]
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
                ],
                cwd=ROOT,
            )
        )
    for child in running:
        wait_for(child)
    return [(json.loads((out / "result.json").read_text()), np.load(out / "probabilities.npy")) for out in outs]


def recipe_members(recipe, variants, seeds):
    """[(variant, seed)]: the members of the recipe trained as these variants from these seeds, as the pipeline
    names them; params.yaml's variants by default."""
    return [(variant, seed) for variant in recipe_params(recipe, variants).ensemble.variants for seed in seeds]


def run_dir(results, recipe, variant, seed):
    """Where one member's run keeps its model and figures: named as the pipeline names the member."""
    return results / f"{recipe}-{variant}-{seed}"


def wait_for(child):
    if child.wait():
        raise subprocess.CalledProcessError(child.returncode, child.args)


def holdout_probabilities(recipe, out, holdout_images, tta_shift):
    """The run's saved model's softmax on the holdout, computed as the evaluate stage computes it."""
    from src.device_policy import precision_policy
    from src.ensemble import member_probabilities

    policy = precision_policy(recipe_params(recipe).ensemble.precision)
    return member_probabilities([out / "model.keras"], holdout_images, 1024, tta_shift, policy)[0]


def tta_probabilities(recipe, result, holdout_images, results, tta_shift):
    """The run's holdout probabilities with test-time augmentation, from its saved model; None without one."""
    out = run_dir(results, recipe, result["variant"], result["seed"])
    cached = out / f"probabilities-tta{tta_shift}.npy"
    if not cached.exists():
        if not (out / "model.keras").exists():
            return None  # runs from before the benchmark kept models
        np.save(cached, holdout_probabilities(recipe, out, holdout_images, tta_shift))
    return np.load(cached)


def row(name, result, holdout_score, baseline):
    """A table row; holdout_score is src.evaluate.score's, as the evaluate stage reports it."""

    def seconds(t):
        if not result["seconds_to"]:
            return "-"
        value = result["seconds_to"][f"{t:.3f}"]
        if value is None:
            return "not reached"
        base = baseline and baseline["seconds_to"].get(f"{t:.3f}")
        return f"{value:.0f}" + (f" ({base / value:.1f}x)" if base else "")

    return (
        f"| {name} | {holdout_score['accuracy']:.2%} | {holdout_score['errors']} | {result['train_seconds']:.0f} | "
        f"{result['images_per_second']:.0f} | {seconds(0.990)} | {seconds(0.995)} | "
        f"{result['peak_rss_mib']:.0f} | {result['device']} |"
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
    parser.add_argument("--zip", type=Path, default=ROOT.parent / "shared" / "data" / "digit-recognizer.zip")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results", help="finished runs, reused")
    parser.add_argument("--tta-shift", type=int, default=0, help="also score with test-time augmentation")
    parser.add_argument("--command", choices=RECIPES, help="print the recipe's `dvc exp run` line and stop")
    parser.add_argument("--final-fit", action="store_true", help="with --command: the final fit's line")
    parser.add_argument("--jobs", type=int, default=1, help="runs trained side by side (on a GPU)")
    parser.add_argument("--child", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if set(args.recipes) - set(RECIPES):
        parser.error(
            f"unknown recipe {sorted(set(args.recipes) - set(RECIPES))[0]!r}; choose from {', '.join(RECIPES)}"
        )
    if args.child:
        recipe, variant, seed, prepared, out, side_by_side = args.child
        return run_one(recipe, variant, int(seed), Path(prepared), Path(out), int(side_by_side))
    if args.command:
        return print(exp_run_command(args.command, args.seeds, args.variants, args.final_fit))
    from src.scoring import score  # after the quick answers: it loads TensorFlow

    prepared = args.out / "holdout"
    if not (prepared / "val.npz").exists():
        prepare_holdout(args.zip, args.out / "holdout-work")
        (args.out / "holdout-work" / "prepared").rename(prepared)
    holdout = np.load(prepared / "val.npz")
    labels, holdout_images = holdout["y"], holdout["x"]
    print(
        "| recipe | holdout accuracy | errors | train wall (s) | images/s | s to 99.0% (speed-up) | "
        "s to 99.5% (speed-up) | peak RSS (MiB) | device |\n" + "| --- " * 9 + "|",
        flush=True,
    )
    baseline_file = run_dir(args.out, BASELINE, "base", args.seeds[0]) / "result.json"
    baseline = json.loads(baseline_file.read_text()) if baseline_file.exists() else None
    for recipe in args.recipes:
        runs = run_all(recipe, args.variants, args.seeds, prepared, args.out, args.jobs)
        if recipe == BASELINE:
            baseline = runs[0][0]
        augmented = [
            tta_probabilities(recipe, result, holdout_images, args.out, args.tta_shift) if args.tta_shift else None
            for result, _ in runs
        ]
        for (result, probabilities), tta in zip(runs, augmented, strict=True):
            name = f"{recipe} ({result['variant']}, seed {result['seed']})"
            print(row(name, result, score(labels, probabilities), recipe != BASELINE and baseline), flush=True)
            if tta is not None:
                print(row(f"{name} + TTA {args.tta_shift} px", result, score(labels, tta), None), flush=True)
        if len(runs) > 1:
            ensemble = {
                "train_seconds": sum(r["train_seconds"] for r, _ in runs),
                "images_per_second": np.mean([r["images_per_second"] for r, _ in runs]),
                "seconds_to": {},
                "peak_rss_mib": max(r["peak_rss_mib"] for r, _ in runs),
                "device": runs[0][0]["device"],
            }
            name = f"{recipe} ensemble of {len(runs)}"
            averaged = np.mean([probabilities for _, probabilities in runs], axis=0)
            print(row(name, ensemble, score(labels, averaged), None), flush=True)
            if all(tta is not None for tta in augmented):
                print(
                    row(f"{name} + TTA {args.tta_shift} px", ensemble, score(labels, np.mean(augmented, axis=0)), None),
                    flush=True,
                )


if __name__ == "__main__":
    main()
