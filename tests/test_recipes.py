"""bench/recipes.py's recipes stay in step with params.yaml and with the README's commands."""

import importlib.util
import shlex
import shutil

import numpy as np
import pytest
import yaml
from dvc.utils.hydra import apply_overrides

from src import config
from workdir import ROOT

spec = importlib.util.spec_from_file_location("recipes", ROOT / "bench" / "recipes.py")
recipes = importlib.util.module_from_spec(spec)
spec.loader.exec_module(recipes)


@pytest.mark.parametrize("recipe", recipes.RECIPES)
def test_every_override_names_a_param_that_exists(recipe):
    params = config.flat(recipes.recipe_params(recipe))
    for dotted, value in recipes.RECIPES[recipe].items():
        assert params[dotted] == value


def test_a_misspelt_override_is_refused(monkeypatch):
    monkeypatch.setitem(recipes.RECIPES, "typo", {"train.agument.rotation": 10})
    with pytest.raises(config.ConfigError, match="recipe typo: train.agument.rotation: no such param"):
        recipes.recipe_params("typo")
    monkeypatch.setitem(recipes.RECIPES, "typo", {"train.epoch": 3})
    with pytest.raises(config.ConfigError, match="recipe typo: train.epoch: no such param"):
        recipes.recipe_params("typo")
    monkeypatch.setitem(recipes.RECIPES, "typo", {"train.epochs": 0})
    with pytest.raises(config.ConfigError, match="recipe typo: train.epochs is 0"):
        recipes.recipe_params("typo")


def test_the_readme_gives_the_champion_preset_as_the_benchmark_ran_it():
    readme = (ROOT / "README.md").read_text()
    validated = recipes.exp_run_command(recipes.CHAMPION, recipes.CHAMPION_SEEDS)
    final_fit = recipes.exp_run_command(recipes.CHAMPION, recipes.CHAMPION_SEEDS, final_fit=True)
    assert validated.startswith(f"dvc exp run -n {recipes.CHAMPION} -S 'train.arch=bn_cnn'") and validated in readme
    assert validated.endswith(" -S 'train.final_fit=false'")
    assert final_fit == (
        validated.replace(f"-n {recipes.CHAMPION} ", f"-n {recipes.CHAMPION}-final-fit ").replace(
            "'train.final_fit=false'", "'train.final_fit=true'"
        )
    )
    assert final_fit in readme
    assert f"**The champion** (`{recipes.CHAMPION}`)" in readme


LINES = [(recipe, final_fit) for recipe in recipes.RECIPES for final_fit in (False, True)]


@pytest.mark.parametrize("recipe, final_fit", LINES)
def test_dvc_reads_a_recipe_line_as_the_recipe_after_any_other_line(recipe, final_fit, tmp_path):
    """`dvc exp run -S` leaves its values in params.yaml: a line must not inherit the last one's."""
    params_file = tmp_path / "params.yaml"

    def run(line):  # what `dvc exp run` does to params.yaml, by DVC's own parser of -S
        words = shlex.split(line)
        apply_overrides(params_file, [words[i + 1] for i, word in enumerate(words) if word == "-S"])
        return yaml.safe_load(params_file.read_text())

    expected = config.with_overrides(yaml.safe_load((ROOT / "params.yaml").read_text()), recipes.RECIPES[recipe])
    expected["ensemble"]["seeds"], expected["train"]["final_fit"] = [3, 4], final_fit
    line = recipes.exp_run_command(recipe, [3, 4], final_fit)
    for earlier, earlier_final_fit in LINES:
        shutil.copy(ROOT / "params.yaml", params_file)
        run(recipes.exp_run_command(earlier, [1, 2], earlier_final_fit))
        assert run(line) == expected, f"{recipe} after {earlier}"


@pytest.mark.parametrize("recipe, seeds", [("fast", None), ("gpu", None)])
def test_the_readme_gives_a_preset_as_the_benchmark_ran_it(recipe, seeds):
    assert recipes.exp_run_command(recipe, seeds) in (ROOT / "README.md").read_text()


def test_a_recipe_trains_each_of_its_variants_from_each_seed(monkeypatch):
    monkeypatch.setitem(recipes.RECIPES, "mixed", {"ensemble.variants": ["base", "slant"]})
    assert recipes.recipe_members("mixed", [1, 2]) == [("base", 1), ("base", 2), ("slant", 1), ("slant", 2)]
    assert recipes.recipe_members("seed_mlp", [1]) == [("base", 1)]


def test_runs_side_by_side_each_keep_their_model_probabilities_and_figures(prepared_dir, tmp_path):
    runs = recipes.run_all("seed_mlp", [1, 2], prepared_dir, tmp_path, jobs=2)
    for seed, (result, probabilities) in zip([1, 2], runs, strict=True):
        assert (result["recipe"], result["variant"], result["seed"], result["epochs"]) == ("seed_mlp", "base", seed, 10)
        assert result["device"].endswith(", 2 runs side by side")
        assert len(result["curve"]) == 10 and result["train_seconds"] > 0
        assert probabilities.shape == (100, 10)
        assert (tmp_path / f"seed_mlp-base-{seed}" / "model.keras").exists()
    assert not np.array_equal(runs[0][1], runs[1][1])  # each from its own seed
    again = recipes.run_all("seed_mlp", [1, 2], prepared_dir, tmp_path, jobs=2)  # finished runs are reused
    assert [result for result, _ in again] == [result for result, _ in runs]
