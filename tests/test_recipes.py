"""bench/recipes.py trains the recipes in recipes/ as the pipeline does, and prints the lines that run them."""

import dataclasses
import importlib.util
import shlex
import shutil

import numpy as np
import pytest
from dvc.utils.hydra import apply_overrides

from src import config
from src.scoring import accuracy_interval
from workdir import ROOT

spec = importlib.util.spec_from_file_location("recipes", ROOT / "bench" / "recipes.py")
recipes = importlib.util.module_from_spec(spec)
spec.loader.exec_module(recipes)


LINES = [
    (recipe, variants, seeds, final_fit)
    for recipe, variants, seeds in [(name, None, None) for name in recipes.RECIPES] + [recipes.CHAMPION, recipes.MIX]
    for final_fit in (False, True)
]


@pytest.mark.parametrize("recipe, variants, seeds, final_fit", LINES)
def test_dvc_reads_a_recipe_line_as_the_benchmark_trains_it(recipe, variants, seeds, final_fit, tmp_path):
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    shutil.copytree(ROOT / "recipes", tmp_path / "recipes")
    line = recipes.exp_run_command(recipe, seeds, variants, final_fit)
    assert len(line) < 100, line
    words = shlex.split(line)
    apply_overrides(tmp_path / "params.yaml", [words[i + 1] for i, word in enumerate(words) if word == "-S"])
    benchmarked = recipes.recipe_params(recipe, variants)
    if final_fit and benchmarked.train.schedule == "plateau":  # a final fit cannot watch the validation split
        reduce_lr = dataclasses.replace(benchmarked.train.reduce_lr, monitor="loss")
        benchmarked = dataclasses.replace(
            benchmarked, train=dataclasses.replace(benchmarked.train, reduce_lr=reduce_lr)
        )
    read = config.load(tmp_path / "params.yaml")
    assert read.member_train("base") == dataclasses.replace(benchmarked.train, final_fit=final_fit)
    assert read.ensemble.members == [(v, s) for v in benchmarked.ensemble.variants for s in seeds or [42]]
    assert read.ensemble.tta_shift == benchmarked.ensemble.tta_shift


def test_the_rows_add_the_recipes_own_test_time_augmentation_unless_told_another():
    assert recipes.rows_tta_shift("champion", None) == 1  # recipes/champion.yaml's
    assert recipes.rows_tta_shift("fast", None) == 0
    assert recipes.rows_tta_shift("champion", 0) == 0
    assert recipes.rows_tta_shift("fast", 2) == 2


def test_a_recipe_line_says_only_what_differs_from_params_yaml():
    assert recipes.exp_run_command("fast") == "dvc exp run -S recipe=fast"
    assert recipes.exp_run_command("fast", [42], ["base"]) == "dvc exp run -S recipe=fast"
    assert recipes.exp_run_command("champion", [42, 43, 44, 45], final_fit=True) == (
        "dvc exp run -S recipe=champion -S 'ensemble.seeds=[42,43,44,45]' -S train.final_fit=true"
    )
    assert recipes.exp_run_command("champion_long", *reversed(recipes.MIX[1:])) == (
        "dvc exp run -S recipe=champion_long -S 'ensemble=${ensembles.mix}'"  # params.yaml's named ensemble
    )
    assert recipes.exp_run_command("champion", [42, 43]) == "dvc exp run -S recipe=champion -S 'ensemble.seeds=[42,43]'"


def test_a_recipe_trains_each_of_its_variants_from_each_seed():
    assert recipes.recipe_members("champion", ["base", "slant"], [1, 2]) == [
        ("base", 1),
        ("base", 2),
        ("slant", 1),
        ("slant", 2),
    ]
    assert recipes.recipe_members("seed_mlp", None, [1]) == [("base", 1)]


def test_runs_side_by_side_each_keep_their_model_probabilities_and_figures(prepared_dir, tmp_path):
    runs = recipes.run_all("seed_mlp", None, [1, 2], prepared_dir, tmp_path, jobs=2, precision=None)
    for seed, (result, probabilities) in zip([1, 2], runs, strict=True):
        assert (result["recipe"], result["variant"], result["seed"], result["epochs"]) == ("seed_mlp", "base", seed, 10)
        assert result["device"].endswith(", 2 runs side by side") and result["precision"] == "float32"
        assert len(result["curve"]) == 10 and result["train_seconds"] > 0
        assert probabilities["val"].shape == (100, 10) and probabilities["sealed"].shape == (50, 10)
        assert (tmp_path / f"seed_mlp-base-{seed}" / "model.keras").exists()
    assert not np.array_equal(runs[0][1]["val"], runs[1][1]["val"])  # each from its own seed
    again = recipes.run_all("seed_mlp", None, [1, 2], prepared_dir, tmp_path, jobs=2, precision=None)  # reused
    assert [result for result, _ in again] == [result for result, _ in runs]


def test_a_precision_given_outlasts_the_recipes_own_and_names_its_runs(tmp_path):
    assert recipes.recipe_params("seed_cnn").train.precision == "float32"
    bf16 = recipes.recipe_params("seed_cnn", precision="mixed_bfloat16")
    assert bf16.train.precision == bf16.ensemble.precision == "mixed_bfloat16"
    assert recipes.run_dir(tmp_path, "seed_cnn", "base", 1, "mixed_bfloat16").name == "seed_cnn-base-1-mixed_bfloat16"
    assert recipes.run_dir(tmp_path, "seed_cnn", "base", 1).name == "seed_cnn-base-1"


def test_a_row_gives_both_holdouts_the_times_to_each_accuracy_and_the_ratio_to_the_seed_cnn():
    def score(errors, images):
        return {"accuracy": 1 - errors / images, "errors": errors, "accuracy_95": accuracy_interval(errors, images)}

    result = {
        "train_seconds": 50.0,
        "images_per_second": 1234.4,
        "seconds_to": {"0.990": 20.2, "0.995": 41.0, "0.997": None},
        "peak_rss_mib": 900.4,
        "device": "CPU, 2 cores, float32",
    }
    scores = {split: score(errors, images) for split, errors, images in (("val", 41, 8400), ("sealed", 24, 4200))}
    assert recipes.row("fast", result, scores, {"train_seconds": 200.0}) == (
        "| fast | 99.51% (41; 99.34%-99.65%) | 99.43% (24; 99.15%-99.63%) | 50 | 0.25x | 1234 | 20 | 41 | not reached "
        "| 900 | CPU, 2 cores, float32 |"
    )
    assert [line.count("|") for line in recipes.HEADER.splitlines()] == [
        recipes.row("fast", result, scores, None).count("|")
    ] * 2
