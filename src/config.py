"""params.yaml, loaded and checked in one place into frozen, typed objects that the stages receive.

Every section is checked whole before a stage does any work: an unknown key, a wrong type
or a value out of range is a ConfigError whose one-line message names the dotted param.
pydantic (already installed with DVC) does the type and range checks; the relations between
params are checked here.

`recipe` names a file in recipes/ whose changes apply over params.yaml's values: a named way to
train the members, kept as a small file instead of a long `dvc exp run -S ...` line.
"""

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

import yaml
from pydantic import ConfigDict, Field, Strict, TypeAdapter, ValidationError
from pydantic.dataclasses import dataclass

from .stage_process import UserError

PARAMS_FILE = Path("params.yaml")
RECIPES_DIR = "recipes"
# What a recipe may change. The members themselves (ensemble.seeds and ensemble.variants) stay params.yaml's:
# DVC builds the train stage's matrix from params.yaml before any stage runs, so a recipe file cannot add one.
RECIPE_SECTIONS = {"train", "ensemble", "evaluate"}
MEMBERS = {"seeds", "variants"}

Int = Annotated[int, Strict()]
Float = Annotated[float, Strict()]  # an int is a float too
Bool = Annotated[bool, Strict()]
Str = Annotated[str, Strict()]
Precision = Literal["auto", "float32", "mixed_bfloat16", "mixed_float16"]
# Keras's optimizers that take a learning rate and nothing else that params.yaml must set.
Optimizer = Literal["adam", "adamw", "nadam", "adamax", "sgd", "rmsprop", "adagrad", "adadelta", "lion"]

section = dataclass(frozen=True, config=ConfigDict(extra="forbid"))


class ConfigError(UserError, ValueError):
    """params.yaml asks for something this pipeline cannot do; the message names the dotted param."""


class RecipeError(ConfigError):
    """The recipe file that params.yaml names asks for something this pipeline cannot do; the message names the
    file and the dotted param."""


@section
class Sample:
    test_rows: Annotated[Int, Field(ge=10, le=4000)]
    seed: Annotated[Int, Field(ge=0)]


@section
class Data:
    competition: Annotated[Str, Field(min_length=1)]
    source: Literal["auto", "local", "kaggle", "sample"]
    local_dir: Annotated[Str, Field(min_length=1)]
    sample: Sample


@section
class Prepare:
    val_fraction: Annotated[Float, Field(gt=0, lt=1)]
    sealed_fraction: Annotated[Float, Field(ge=0, lt=1)]
    seed: Annotated[Int, Field(ge=0)]


@section
class Ensemble:
    seeds: Annotated[tuple[Int, ...], Field(min_length=1)]
    variants: Annotated[tuple[Str, ...], Field(min_length=1)]
    tta_shift: Annotated[Int, Field(ge=0, le=4)]
    precision: Precision

    @property
    def members(self):
        """[(variant, seed)]: one member per variant and seed, as dvc.yaml's matrix makes them."""
        return [(variant, seed) for variant in self.variants for seed in self.seeds]


@section
class Augment:
    rotation: Annotated[Float, Field(ge=0, le=180)]
    zoom: Annotated[Float, Field(ge=0, lt=1)]
    shift: Annotated[Float, Field(ge=0, lt=1)]
    shear: Annotated[Float, Field(ge=0, le=1)]


@section
class LrScaling:
    rule: Literal["linear", "sqrt", "none"]
    base_batch_size: Annotated[Int, Field(ge=1)]


@section
class ReduceLr:
    monitor: Literal["val_accuracy", "val_loss", "accuracy", "loss"]
    factor: Annotated[Float, Field(gt=0, lt=1)]
    patience: Annotated[Int, Field(ge=0)]
    min_lr: Annotated[Float, Field(ge=0)]


@section
class Train:
    arch: Literal["cnn", "bn_cnn", "fast_cnn", "mlp"]
    augment: Augment
    optimizer: Optimizer
    label_smoothing: Annotated[Float, Field(ge=0, lt=1)]
    ema_momentum: Annotated[Float, Field(ge=0, lt=1)]
    learning_rate: Annotated[Float, Field(gt=0, le=1)]
    schedule: Literal["plateau", "exponential", "one_cycle"]
    decay_rate: Annotated[Float, Field(gt=0, le=1)]
    warmup_fraction: Annotated[Float, Field(ge=0, lt=1)]
    epochs: Annotated[Int, Field(ge=1)]
    batch_size: Annotated[Int, Field(ge=1, le=65536)]
    lr_scaling: LrScaling
    final_fit: Bool
    strategy: Literal["auto", "multiworker"]
    precision: Precision
    jit_compile: Literal["auto", True, False]
    deterministic: Bool
    reduce_lr: ReduceLr


@section
class Evaluate:
    max_misclassified: Annotated[Int, Field(ge=0, le=1000)]


@section
class Threads:
    intra_op: Annotated[Int, Field(ge=0)]
    inter_op: Annotated[Int, Field(ge=0)]


@section
class Kaggle:
    attempts: Annotated[Int, Field(ge=1, le=100)]
    backoff_seconds: Annotated[Float, Field(ge=0, le=3600)]
    connect_timeout_seconds: Annotated[Float, Field(gt=0, le=600)]
    stall_timeout_seconds: Annotated[Float, Field(gt=0, le=3600)]


@section
class Runtime:
    threads: Threads
    inference_batch_size: Annotated[Int, Field(ge=1, le=65536)]
    kaggle: Kaggle


@dataclasses.dataclass(frozen=True)
class Params:
    """All of params.yaml, with its recipe's changes in. `ensembles` are named `ensemble` sections, for `dvc exp
    run -S 'ensemble=${ensembles.<name>}'` to copy. `variants` holds each variant's changes to `train`, as
    written; member_train(variant) gives the whole `train` section that a member of it trains with."""

    recipe: str
    data: Data
    prepare: Prepare
    ensemble: Ensemble
    ensembles: Mapping[str, Ensemble]
    train: Train
    variants: Mapping[str, Mapping[str, Any]]
    evaluate: Evaluate
    runtime: Runtime

    def member_train(self, variant):
        """The `train` params of the variant's members: params.yaml's `train` with the variant's changes."""
        return _variant_train(self.train, self.variants, variant)


SECTIONS = {field.name: field.type for field in dataclasses.fields(Params) if field.name not in ("recipe", "variants")}
RecipeName = Annotated[Str, Field(pattern=r"^[A-Za-z0-9_-]+$")]


def load(path=PARAMS_FILE, overrides=None):
    """params.yaml at path as Params, with `overrides` ({"train.epochs": 2, ...}) put in first, as `dvc exp run -S`
    does, then its recipe's changes; raises ConfigError (RecipeError for the recipe file's own faults)."""
    raw = with_overrides(read_yaml(path), overrides or {})
    params = parse(raw, relations=False)
    recipe_file = Path(path).parent / RECIPES_DIR / f"{params.recipe}.yaml"
    if not recipe_file.exists():
        known = ", ".join(recipe_names(recipe_file.parent)) or "none"
        raise ConfigError(
            f"recipe is {params.recipe!r}, but there is no {RECIPES_DIR}/{params.recipe}.yaml; the recipes are {known}"
        )
    try:
        changes = read_yaml(recipe_file)
        merged = with_recipe(raw, changes)
        if any(changes.values()):
            return parse(merged)
    except ConfigError as error:
        raise RecipeError(f"with {RECIPES_DIR}/{params.recipe}.yaml: {error}") from None
    return parse(raw)


def read_yaml(path):
    try:
        return yaml.safe_load(Path(path).read_text())
    except OSError as error:
        raise ConfigError(f"cannot read it: {error.strerror}") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"not valid YAML{where}: {getattr(error, 'problem', None) or error}") from None


def with_recipe(raw, changes):
    """raw params.yaml content with a recipe file's changes put in; ConfigError names a change it may not make."""
    if not isinstance(changes, dict):
        raise ConfigError(f"it must be a mapping of the sections it changes: {', '.join(sorted(RECIPE_SECTIONS))}")
    result = dict(raw)
    for name, section_changes in changes.items():
        if name not in RECIPE_SECTIONS:
            raise ConfigError(f"{name}: a recipe changes only {', '.join(sorted(RECIPE_SECTIONS))}")
        if not isinstance(section_changes, dict):
            raise ConfigError(f"{name} must be a mapping of the params it changes")
        if name == "ensemble" and MEMBERS & set(section_changes):
            member = sorted(MEMBERS & set(section_changes))[0]
            raise ConfigError(
                f"ensemble.{member}: a recipe does not choose the members, because DVC builds the train stages from "
                f"params.yaml; set it there or with dvc exp run -S"
            )
        result[name] = changed(raw.get(name) or {}, section_changes, name, name)
    if "train" not in changes:
        # dvc.yaml's train stage lists this section alone, so that a change to the others retrains nothing
        raise ConfigError("train is missing; write `train: {}` if the recipe changes no training")
    return result


def check_recipe_overrides(path, committed_text):
    """Refuse a change to params.yaml since committed_text (its text at git's HEAD) that its recipe overrides,
    which would otherwise be silently undone: `dvc exp run -S recipe=fast -S train.epochs=8` with a recipe that
    sets its own epochs."""
    try:
        committed = flat(yaml.safe_load(committed_text) or {})
    except yaml.YAMLError:
        return
    raw = read_yaml(path)
    recipe_file = Path(path).parent / RECIPES_DIR / f"{raw['recipe']}.yaml"
    recipe = flat(read_yaml(recipe_file) or {})
    for dotted, value in flat(raw).items():
        if dotted in recipe and dotted in committed and committed[dotted] != value != recipe[dotted]:
            raise ConfigError(
                f"{path}: {dotted} is {shown(value)} here, but recipe {raw['recipe']} sets it to "
                f"{shown(recipe[dotted])}, which wins; change it in {RECIPES_DIR}/{raw['recipe']}.yaml, or in a copy "
                f"of that recipe"
            )


def recipe_names(recipes_dir):
    """The recipes in recipes_dir, by name."""
    return sorted(path.stem for path in Path(recipes_dir).glob("*.yaml"))


def load_params(path=PARAMS_FILE):
    """load(path) for a stage or command: a ConfigError names the file too."""
    try:
        return load(path)
    except RecipeError as error:
        raise RecipeError(f"{path} {error}") from None
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from None


def parse(raw, relations=True):
    """Params from params.yaml's content; raises ConfigError. Without relations, each value is checked alone, as
    before a recipe's changes are in."""
    if not isinstance(raw, dict):
        raise ConfigError("it must be a mapping of sections: " + ", ".join([*SECTIONS, "variants"]))
    unknown = sorted(set(raw) - {"recipe", *SECTIONS, "variants"})
    if unknown:
        raise ConfigError(
            f"{unknown[0]}: no such section; the sections are {', '.join(['recipe', *SECTIONS, 'variants'])}"
        )
    if "recipe" not in raw:
        raise ConfigError(f"recipe is missing; name a file in {RECIPES_DIR}/, or default")
    recipe = checked(RecipeName, raw["recipe"], "recipe")
    sections = {name: checked(kind, raw.get(name), name) for name, kind in SECTIONS.items()}
    variants = raw.get("variants") or {}
    if not isinstance(variants, dict) or not all(isinstance(v, dict) or v is None for v in variants.values()):
        raise ConfigError(
            "variants: each variant must be a mapping of the `train` params it changes, as {} or {epochs: 45}"
        )
    params = Params(recipe=recipe, variants={name: changes or {} for name, changes in variants.items()}, **sections)
    for name in params.variants:
        params.member_train(name)  # each variant's changes name params, and its values are in range
    if relations:
        check_train(params.train, "train")
        for name in params.variants:
            check_train(params.member_train(name), f"variants.{name}")
    prepare = params.prepare
    if prepare.val_fraction + prepare.sealed_fraction > 0.9:
        raise ConfigError(
            f"prepare.val_fraction ({prepare.val_fraction}) and prepare.sealed_fraction ({prepare.sealed_fraction}) "
            "hold back more than 0.9 of train.csv together; leave most of it to train on"
        )
    named = {"ensemble": params.ensemble, **{f"ensembles.{name}": entry for name, entry in params.ensembles.items()}}
    for where, ensemble in named.items():
        undefined = [name for name in ensemble.variants if name not in params.variants]
        if undefined:
            raise ConfigError(
                f"{where}.variants names {undefined[0]!r}, which `variants` does not define; it defines "
                f"{', '.join(params.variants) or 'none'}"
            )
    return params


def checked(kind, value, where):
    """value as the dataclass `kind`, or ConfigError naming the first problem's dotted param under `where`."""
    if value is None:
        raise ConfigError(f"{where}: the section is missing")
    try:
        return TypeAdapter(kind).validate_python(value)
    except ValidationError as error:
        raise ConfigError(explain(error.errors()[0], where, kind)) from None


def explain(problem, where, kind):
    """One sentence for one of pydantic's errors, naming its dotted param."""
    keys = [str(key) for key in problem["loc"] if not str(key).startswith(("literal[", "function-"))]
    dotted = ".".join([where, *keys])
    kind_of_problem = problem["type"]
    if kind_of_problem in ("unexpected_keyword_argument", "extra_forbidden"):
        known = [field.name for field in dataclasses.fields(field_type(kind, keys[:-1]))]
        return f"{dotted}: no such param; {dotted.rsplit('.', 1)[0]} has {', '.join(known)}"
    if kind_of_problem == "missing_argument" or kind_of_problem == "missing":
        return f"{dotted} is missing"
    if kind_of_problem == "dataclass_type":
        return f"{dotted} is {problem['input']!r}; it must be a mapping of params"
    message = (
        problem["msg"]
        .replace("Input should be", "it must be")
        .replace("Tuple should", "it must")
        .replace("True or False", "true or false")
    )
    return f"{dotted} is {shown(problem['input'])}; {message.replace(' after validation', '')}"


def shown(value):
    """value as params.yaml would hold it: true, null, 'text', [1, 2]."""
    if isinstance(value, str):
        return repr(value)
    return yaml.safe_dump(value, default_flow_style=True, width=1000).removesuffix("\n...\n").strip()


def field_type(kind, keys):
    """The dataclass that keys, a path of field names (and of a mapping's keys), lead to from kind."""
    for key in keys:
        if get_origin(kind) is Mapping:
            kind = get_args(kind)[1]
        else:
            kind = {field.name: field.type for field in dataclasses.fields(kind)}[key]
    return kind


def check_train(train, where):
    """The relations between `train` params that no single param's check can see."""
    if train.final_fit and train.schedule == "plateau" and train.reduce_lr.monitor.startswith("val_"):
        raise ConfigError(
            f"{where}.final_fit is true with the plateau schedule, which watches the validation "
            f"split that a final fit trains on; set train.schedule to exponential or one_cycle, or "
            f"train.reduce_lr.monitor to loss"
        )


def _variant_train(train, variants, variant):
    if variant not in variants:
        raise ConfigError(f"no variant {variant!r}; params.yaml defines {', '.join(variants) or 'none'}")
    merged = changed(dataclasses.asdict(train), variants[variant], f"variants.{variant}")
    return checked(Train, merged, f"variants.{variant}")


def changed(values, changes, where, section="train"):
    """values (a nest of dicts) with changes, a nest of some of the same keys, put in; ConfigError names a
    change that matches no param."""
    result = dict(values)
    for key, value in changes.items():
        if key not in values or isinstance(values[key], dict) != isinstance(value, dict):
            raise ConfigError(
                f"{where}.{key}: changes no param: `{section}` has no {key!r} there"
                + (" but a section" if key in values else "")
            )
        result[key] = changed(values[key], value, f"{where}.{key}", section) if isinstance(value, dict) else value
    return result


def with_overrides(raw, overrides):
    """raw params.yaml content with each `dotted.name: value` of overrides set; a name that is no param is refused."""
    raw = yaml.safe_load(yaml.safe_dump(raw))  # a deep copy
    for dotted, value in overrides.items():
        *parents, key = dotted.split(".")
        node = raw
        for parent in parents:
            node = node.get(parent) if isinstance(node, dict) else None
        if not isinstance(node, dict) or key not in node:
            raise ConfigError(f"{dotted}: no such param to override")
        node[key] = list(value) if isinstance(value, tuple) else value
    return raw


def flat(params, prefix=""):
    """params (Params, or a nest of dicts) by dotted name, as DVC names them: {"train.epochs": 10, ...}."""
    values = dataclasses.asdict(params) if dataclasses.is_dataclass(params) else params
    result = {}
    for name, value in values.items():
        if isinstance(value, Mapping):
            result.update(flat(value, f"{prefix}{name}."))
        else:
            result[f"{prefix}{name}"] = list(value) if isinstance(value, tuple) else value
    return result
