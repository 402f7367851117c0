"""params.yaml is checked whole, in one place: every bad value is refused with one line naming its dotted param."""

import dataclasses
import shutil

import pytest
import yaml

from src import config
from workdir import ROOT, run_module

RAW = yaml.safe_load((ROOT / "params.yaml").read_text())

# At least one bad value for every param in params.yaml, and what the message says of it.
BAD = {
    "recipe": ("nope", "there is no recipes/nope.yaml; the recipes are champion, champion_long, default"),
    "data.competition": ("", "at least 1 character"),
    "data.source": ("kagle", "'auto', 'local', 'kaggle' or 'sample'"),
    "data.local_dir": ("", "at least 1 character"),
    "data.sample.test_rows": (0, "greater than or equal to 10"),
    "data.sample.seed": (-1, "greater than or equal to 0"),
    "prepare.val_fraction": (1.5, "less than 1"),
    "prepare.sealed_fraction": (-0.1, "greater than or equal to 0"),
    "prepare.seed": ("42", "a valid integer"),
    "ensemble.seeds": ([], "at least 1 item"),
    "ensemble.variants": (["nope"], "which `variants` does not define"),
    "ensemble.tta_shift": (-1, "greater than or equal to 0"),
    "ensemble.precision": ("float16", "'auto', 'float32', 'mixed_bfloat16' or 'mixed_float16'"),
    "ensembles.mix.seeds": ([], "at least 1 item"),
    "ensembles.mix.variants": (["nope"], "which `variants` does not define"),
    "ensembles.mix.tta_shift": (5, "less than or equal to 4"),
    "ensembles.mix.precision": ("half", "'auto', 'float32', 'mixed_bfloat16' or 'mixed_float16'"),
    "train.arch": ("vgg_cnn", "'cnn', 'bn_cnn', 'fast_cnn' or 'mlp'"),
    "train.augment.rotation": (-5, "greater than or equal to 0"),
    "train.augment.zoom": (1, "less than 1"),
    "train.augment.shift": ("a bit", "a valid number"),
    "train.augment.shear": (2, "less than or equal to 1"),
    "train.optimizer": ("adamz", "'adam', 'adamw'"),
    "train.label_smoothing": (1.0, "less than 1"),
    "train.ema_momentum": (-0.5, "greater than or equal to 0"),
    "train.learning_rate": (-0.1, "greater than 0"),
    "train.schedule": ("cosine", "'plateau', 'exponential' or 'one_cycle'"),
    "train.decay_rate": (0, "greater than 0"),
    "train.warmup_fraction": (1, "less than 1"),
    "train.epochs": (0, "greater than or equal to 1"),
    "train.batch_size": (0, "greater than or equal to 1"),
    "train.lr_scaling.rule": ("log", "'linear', 'sqrt' or 'none'"),
    "train.lr_scaling.base_batch_size": (0, "greater than or equal to 1"),
    "train.final_fit": ("yes", "a valid boolean"),
    "train.strategy": ("mirrored", "'auto' or 'multiworker'"),
    "train.precision": ("bfloat16", "'auto', 'float32', 'mixed_bfloat16' or 'mixed_float16'"),
    "train.jit_compile": ("yes", "'auto', true or false"),
    "train.deterministic": (1, "a valid boolean"),
    "train.reduce_lr.monitor": ("val_acc", "'val_accuracy', 'val_loss', 'accuracy' or 'loss'"),
    "train.reduce_lr.factor": (1.5, "less than 1"),
    "train.reduce_lr.patience": (-1, "greater than or equal to 0"),
    "train.reduce_lr.min_lr": ("1e-5", "a valid number"),
    "evaluate.max_misclassified": (-1, "greater than or equal to 0"),
    "runtime.threads.intra_op": (-1, "greater than or equal to 0"),
    "runtime.threads.inter_op": (1.5, "a valid integer"),
    "runtime.inference_batch_size": (0, "greater than or equal to 1"),
    "runtime.kaggle.attempts": (0, "greater than or equal to 1"),
    "runtime.kaggle.backoff_seconds": (-1, "greater than or equal to 0"),
    "runtime.kaggle.connect_timeout_seconds": (0, "greater than 0"),
    "runtime.kaggle.stall_timeout_seconds": (None, "a valid number"),
}


def params_in(raw, prefix=""):
    """The dotted names of raw's params: its leaves, and each variant's changes as one."""
    names = []
    for key, value in raw.items():
        if isinstance(value, dict) and value and f"{prefix}{key}" != "variants":
            names += params_in(value, f"{prefix}{key}.")
        elif f"{prefix}{key}" != "variants":
            names.append(f"{prefix}{key}")
    return names


def error_for(overrides):
    with pytest.raises(config.ConfigError) as caught:
        config.load(ROOT / "params.yaml", overrides)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_params_yaml_loads_into_frozen_typed_sections():
    params = config.load(ROOT / "params.yaml")
    assert params.train.epochs == RAW["train"]["epochs"] and params.ensemble.seeds == tuple(RAW["ensemble"]["seeds"])
    assert isinstance(params.train.augment, config.Augment) and isinstance(params.train.learning_rate, float)
    with pytest.raises(dataclasses.FrozenInstanceError):
        params.train.epochs = 3


def test_every_param_has_a_bad_value_tested():
    assert sorted(params_in(RAW)) == sorted(BAD)


@pytest.mark.parametrize("dotted", BAD)
def test_a_bad_value_is_refused_naming_the_param(dotted):
    value, allowed = BAD[dotted]
    message = error_for({dotted: value})
    assert message.startswith(dotted) and allowed in message, message


@pytest.mark.parametrize(
    "value, said", [(True, "a valid integer"), (10.0, "a valid integer"), ("10", "a valid integer"), (None, "is null")]
)
def test_a_number_is_never_guessed_from_another_type(value, said):
    assert said in error_for({"train.epochs": value})


def test_an_unknown_key_is_refused_naming_its_place_and_the_known_ones():
    raw = config.with_overrides(RAW, {})
    raw["train"]["augment"]["elastic"] = 0.5
    with pytest.raises(
        config.ConfigError,
        match=r"^train\.augment\.elastic: no such param; train\.augment has "
        r"rotation, zoom, shift, shear$",
    ):
        config.parse(raw)
    raw = config.with_overrides(RAW, {})
    raw["ensembles"]["mix"]["members"] = 16
    with pytest.raises(
        config.ConfigError,
        match=r"^ensembles\.mix\.members: no such param; ensembles\.mix has seeds, variants, tta_shift, precision$",
    ):
        config.parse(raw)
    raw = config.with_overrides(RAW, {})
    raw["trian"] = {}
    with pytest.raises(config.ConfigError, match=r"^trian: no such section"):
        config.parse(raw)


def test_a_missing_param_or_section_is_named():
    raw = config.with_overrides(RAW, {})
    del raw["train"]["reduce_lr"]["patience"]
    with pytest.raises(config.ConfigError, match=r"^train\.reduce_lr\.patience is missing$"):
        config.parse(raw)
    raw = config.with_overrides(RAW, {})
    del raw["ensembles"]["mix"]["tta_shift"]  # as `-S 'ensemble=${ensembles.mix}'` would leave ensemble.tta_shift
    with pytest.raises(config.ConfigError, match=r"^ensembles\.mix\.tta_shift is missing$"):
        config.parse(raw)
    raw = config.with_overrides(RAW, {})
    del raw["evaluate"]
    with pytest.raises(config.ConfigError, match=r"^evaluate: the section is missing$"):
        config.parse(raw)


def test_an_override_of_no_param_is_refused():
    with pytest.raises(config.ConfigError, match=r"^train\.epoch: no such param to override$"):
        config.load(ROOT / "params.yaml", {"train.epoch": 3})


def test_a_final_fit_with_the_plateau_schedule_is_refused():
    message = error_for({"train.final_fit": True})
    assert message.startswith("train.final_fit is true with the plateau schedule")
    params = config.load(ROOT / "params.yaml", {"train.final_fit": True, "train.schedule": "one_cycle"})
    assert params.train.final_fit


def test_holdouts_that_leave_too_little_to_train_on_are_refused():
    assert error_for({"prepare.val_fraction": 0.5, "prepare.sealed_fraction": 0.45}) == (
        "prepare.val_fraction (0.5) and prepare.sealed_fraction (0.45) hold back more than 0.9 of train.csv "
        "together; leave most of it to train on"
    )
    assert config.load(ROOT / "params.yaml", {"prepare.sealed_fraction": 0}).prepare.sealed_fraction == 0


def test_a_variant_is_train_with_its_changes_and_checked_as_train_is():
    params = config.load(ROOT / "params.yaml")
    slant = params.member_train("slant")
    assert slant.augment.shear == RAW["variants"]["slant"]["augment"]["shear"]
    assert slant == dataclasses.replace(
        params.train, augment=dataclasses.replace(params.train.augment, shear=slant.augment.shear)
    )
    assert params.member_train("base") == params.train
    assert "variants.slant.augment.shear is 2; it must be less than or equal to 1" == error_for(
        {"variants.slant": {"augment": {"shear": 2}}}
    )
    assert error_for({"variants.slant": {"augmnt": {"shear": 0.1}}}).startswith(
        "variants.slant.augmnt: changes no param: `train` has no 'augmnt' there"
    )
    assert error_for({"variants.slant": {"augment": 0.1}}).startswith(
        "variants.slant.augment: changes no param: `train` has no 'augment' there but a section"
    )
    assert error_for({"variants.slant": [1]}).startswith("variants: each variant must be a mapping")


def test_the_ensemble_names_its_members_as_dvc_yaml_s_matrix_does():
    params = config.load(ROOT / "params.yaml", {"ensemble.seeds": [1, 2], "ensemble.variants": ["base", "slant"]})
    assert params.ensemble.members == [("base", 1), ("base", 2), ("slant", 1), ("slant", 2)]


def test_a_file_that_is_not_yaml_or_not_there_is_named(tmp_path):
    broken = tmp_path / "params.yaml"
    broken.write_text("train:\n  epochs: [1\n")
    with pytest.raises(config.ConfigError, match=r"^not valid YAML at line 3, column 1"):
        config.load(broken)
    with pytest.raises(config.ConfigError, match=r"^cannot read it: No such file"):
        config.load(tmp_path / "missing.yaml")
    broken.write_text("- a list\n")
    with pytest.raises(config.ConfigError, match=r"^it must be a mapping of sections"):
        config.load(broken)


def test_a_stage_ends_with_one_line_naming_the_file_and_the_param(tmp_path):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(config.with_overrides(RAW, {"train.epochs": -1})))
    result = run_module(tmp_path, "src.prepare", "raw", "prepared")
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr == "prepare: error: params.yaml: train.epochs is -1; it must be greater than or equal to 1\n"
    assert not (tmp_path / "prepared").exists()


def test_flat_names_params_as_dvc_does():
    flat = config.flat(config.load(ROOT / "params.yaml"))
    assert flat["train.reduce_lr.patience"] == RAW["train"]["reduce_lr"]["patience"]
    assert flat["ensemble.seeds"] == RAW["ensemble"]["seeds"] and flat["variants.base45.epochs"] == 45


@pytest.mark.parametrize("recipe", config.recipe_names(ROOT / "recipes"))
def test_a_recipe_is_params_yaml_with_only_its_file_s_changes(recipe):
    changes = yaml.safe_load((ROOT / "recipes" / f"{recipe}.yaml").read_text()) or {}
    assert set(changes) <= config.RECIPE_SECTIONS and not config.MEMBERS & set(changes.get("ensemble", {}))
    params = config.flat(config.load(ROOT / "params.yaml", {"recipe": recipe}))
    assert params == {**config.flat(config.load(ROOT / "params.yaml")), **config.flat(changes), "recipe": recipe}


def recipe_error(tmp_path, recipe_text, overrides=None):
    (tmp_path / "recipes").mkdir(exist_ok=True)
    (tmp_path / "recipes" / "mine.yaml").write_text(recipe_text)
    raw = config.with_overrides(RAW, {"recipe": "mine", **(overrides or {})})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(config.RecipeError) as caught:
        config.load_params(tmp_path / "params.yaml")
    assert str(caught.value).startswith(f"{tmp_path / 'params.yaml'} with recipes/mine.yaml: ")
    return str(caught.value).removeprefix(f"{tmp_path / 'params.yaml'} ")


def test_a_recipe_s_fault_is_named_with_its_file_and_param(tmp_path):
    assert recipe_error(tmp_path, "train: {epochs: 0}") == (
        "with recipes/mine.yaml: train.epochs is 0; it must be greater than or equal to 1"
    )
    assert recipe_error(tmp_path, "train: {epoch: 3}") == (
        "with recipes/mine.yaml: train.epoch: changes no param: `train` has no 'epoch' there"
    )
    assert recipe_error(tmp_path, "prepare: {seed: 1}") == (
        "with recipes/mine.yaml: prepare: a recipe changes only ensemble, evaluate, train"
    )
    assert recipe_error(tmp_path, "- a list").startswith("with recipes/mine.yaml: it must be a mapping")
    assert recipe_error(tmp_path, "ensemble: {tta_shift: 1}") == (
        "with recipes/mine.yaml: train is missing; write `train: {}` if the recipe changes no training"
    )
    assert recipe_error(tmp_path, "train: {epochs: [3").startswith("with recipes/mine.yaml: not valid YAML at line 1")
    assert recipe_error(tmp_path, "train: {final_fit: true}") == (
        "with recipes/mine.yaml: train.final_fit is true with the plateau schedule, which watches the validation "
        "split that a final fit trains on; set train.schedule to exponential or one_cycle, or "
        "train.reduce_lr.monitor to loss"
    )


def test_a_recipe_does_not_choose_the_members_which_dvc_reads_from_params_yaml(tmp_path):
    for member in ("seeds", "variants"):
        assert recipe_error(tmp_path, f"ensemble: {{{member}: [1]}}").startswith(
            f"with recipes/mine.yaml: ensemble.{member}: a recipe does not choose the members"
        )


def test_params_yaml_s_own_values_are_checked_before_its_recipe_s(tmp_path):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(config.with_overrides(RAW, {"recipe": "a b"})))
    with pytest.raises(config.ConfigError, match=r"params.yaml: recipe is 'a b'; String should match"):
        config.load_params(tmp_path / "params.yaml")
    raw = config.with_overrides(RAW, {})
    del raw["recipe"]
    with pytest.raises(config.ConfigError, match=r"^recipe is missing; name a file in recipes/, or default$"):
        config.parse(raw)


def test_relations_are_checked_once_the_recipe_s_changes_are_in():
    # params.yaml's plateau schedule would refuse a final fit; the champion recipe's one-cycle schedule allows it
    assert config.load(ROOT / "params.yaml", {"recipe": "champion", "train.final_fit": True}).train.final_fit
    with pytest.raises(config.RecipeError, match="^with recipes/seed_cnn.yaml: train.final_fit is true with the plat"):
        config.load(ROOT / "params.yaml", {"recipe": "seed_cnn", "train.final_fit": True})


def test_a_change_to_params_yaml_that_the_recipe_would_undo_is_refused(tmp_path):
    committed = yaml.safe_dump(RAW)
    shutil.copytree(ROOT / "recipes", tmp_path / "recipes")
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(config.with_overrides(RAW, {"recipe": "fast", "train.epochs": 8})))
    with pytest.raises(config.ConfigError) as caught:
        config.check_recipe_overrides(params_file, committed)
    assert str(caught.value) == (
        f"{params_file}: train.epochs is 8 here, but recipe fast sets it to 4, which wins; change it in "
        "recipes/fast.yaml, or in a copy of that recipe"
    )
    for unrefused in ({"recipe": "fast", "train.optimizer": "nadam"}, {"recipe": "fast", "train.epochs": 4}):
        params_file.write_text(yaml.safe_dump(config.with_overrides(RAW, unrefused)))
        config.check_recipe_overrides(params_file, committed)  # a param fast leaves alone, or fast's own value
    config.check_recipe_overrides(params_file, "")  # no commit to compare with
