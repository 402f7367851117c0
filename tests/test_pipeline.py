"""End to end: `dvc repro` in a temporary git copy of this repo, on the offline sample, the MLP for one epoch."""

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import yaml

from src import config, stage_process
from src.submission import check_submission
from workdir import (
    ROOT,
    dvc_status,
    environment_without_kaggle,
    epochs_backed_up,
    git,
    repro,
    set_param,
    stages_run,
)

OUTPUTS = [
    "data/raw/train.csv",
    "data/raw/test.csv",
    "data/prepared/train.npz",
    "data/prepared/test.npz",
    "models/members/base-42.keras",
    "submissions/submission.csv",
]


def all_stages(project):
    """Every stage, in the order dvc runs them, for the project's ensemble variants and seeds."""
    ensemble = yaml.safe_load((project / "params.yaml").read_text())["ensemble"]
    members = [f"train@{variant}-{seed}" for variant in ensemble["variants"] for seed in ensemble["seeds"]]
    return ["source", "download", "prepare", *members, "evaluate", "predict", "export", "plots_page"]


@pytest.fixture(scope="module")
def offline_env(tmp_path_factory):
    """No Kaggle credentials anywhere: a user's first run."""
    return environment_without_kaggle(tmp_path_factory.mktemp("home"))


@pytest.fixture(scope="module")
def first_repro(first_run):
    """The output of the first `dvc repro`; every test starts from its results."""
    return first_run[1]


def params_changed(*names):
    """dvc_status's entry for a stage whose params.yaml params names changed."""
    return [{"changed deps": {"params.yaml": dict.fromkeys(names, "modified")}}]


def test_first_repro_runs_every_stage_on_the_sample(project, first_repro):
    assert stages_run(first_repro) == all_stages(project)
    assert "source: using 'sample'" in first_repro
    check_submission(project / "submissions/submission.csv", project / "data/raw/sample_submission.csv")
    assert (project / "submissions/submission.csv").read_text().count("\n") == 1001
    made_by = json.loads((project / "submissions/submission.json").read_text())
    assert made_by["params"] == config.flat(config.load(project / "params.yaml")) and made_by["experiment"] == ""
    assert made_by["git_rev"] == git(project, "rev-parse", "--short", "HEAD")
    scores = yaml.safe_load((project / "eval/scores.json").read_text())
    assert scores["val"]["images"] == 800 and scores["test"]["images"] == 1000 and scores["sealed"]["images"] == 400
    metrics = yaml.safe_load((project / "eval/metrics.json").read_text())
    headline = {split: {key: scores[split][key] for key in ("accuracy", "errors")} for split in ("val", "test")}
    assert metrics == headline  # the sealed holdout's scores stay out of what `dvc exp show` compares
    assert metrics["test"]["accuracy"] > 0.5  # the MLP, one epoch on 2,800 digits: far above chance (0.1)


def test_each_stage_ends_with_a_line_saying_what_it_did_and_no_start_up_noise(first_repro):
    assert "prepare: 2,800 train, 800 val, 400 sealed, 1,000 test digits -> data/prepared\n" in first_repro
    assert re.search(
        r"^train@base-42: 1 epoch, val accuracy \d+\.\d\d% -> models/members/base-42.keras$", first_repro, re.M
    )
    assert re.search(
        r"^evaluate: val accuracy [\d.]+% \(\d+ of 800 wrong\), test accuracy .* -> eval$", first_repro, re.M
    )
    assert "predict: 1,000 labels from the sample data -> submissions/submission.csv\n" in first_repro
    # TensorFlow's start-up log on a machine with no NVIDIA GPU: absl's, CUDA's and oneDNN's notes.
    noise = r"cuInit|absl|^[IWEF]\d{4} |oneDNN|cuda|TF-TRT|computation_placer|cpu_feature_guard"
    assert not re.search(noise, first_repro, re.M | re.I) or stage_process.nvidia_device_present(), first_repro


def test_metrics_and_plots_are_shown_by_dvc(project, first_repro, offline_env):
    shown = subprocess.run(
        ["dvc", "metrics", "show"], cwd=project, env=offline_env, capture_output=True, text=True, check=True
    ).stdout
    assert "eval/metrics.json" in shown and "dvclive" not in shown  # the ensemble's metrics, not each member's
    plots = subprocess.run(
        ["dvc", "plots", "show", "-o", "plots_html"],
        cwd=project,
        env=offline_env,
        capture_output=True,
        text=True,
        check=True,
    )
    html = (project / "plots_html" / "index.html").read_text()
    for plot in ("confusion/val.csv", "misclassified/val.png", "val/accuracy.tsv"):
        assert plot in html, plots.stdout


def test_the_plots_page_draws_every_plot_offline(project, first_repro, offline_env, offline_browser):
    subprocess.run(["dvc", "plots", "show"], cwd=project, env=offline_env, capture_output=True, text=True, check=True)
    page = project / "dvc_plots" / "index.html"
    plots = re.findall(r"vegaEmbed\('#([^']+)'", page.read_text())
    # The confusion matrices of val and test, val's normalized one, and the member's five training curves.
    assert len(plots) == 8 and "confusion_normalized" in plots, plots
    dom = offline_browser(page)
    assert dom.count('class="marks"') == len(plots)  # what Vega draws a plot in
    images = re.findall(r'<img src="(static/[^"]+)"', dom)  # DVC's copies of the image plots
    assert len(images) == 2 and all((page.parent / image).is_file() for image in images), images


def test_second_repro_reruns_nothing(project, first_repro, offline_env):
    before = {name: (project / name).stat().st_mtime_ns for name in OUTPUTS}
    output = repro(project, offline_env)
    assert stages_run(output) == ["source"]  # the cheap check of which source is available
    for stage in all_stages(project)[1:]:
        assert f"Stage '{stage}' didn't change, skipping" in output
    assert {name: (project / name).stat().st_mtime_ns for name in OUTPUTS} == before


def test_changing_epochs_changes_only_the_train_stage(own_project, offline_env):
    set_param(own_project, "train.epochs", 2)
    assert dvc_status(own_project, offline_env) == {
        "source": ["always changed"],
        "train@base-42": params_changed("train"),
    }


def test_how_the_work_runs_reruns_nothing(project, first_repro, offline_env):
    """Thread pools, inference batches and Kaggle retries (params.yaml `runtime`) change no stage's result."""
    for dotted, value in {
        "runtime.threads.intra_op": 1,
        "runtime.threads.inter_op": 1,
        "runtime.inference_batch_size": 256,
        "runtime.kaggle.attempts": 2,
    }.items():
        set_param(project, dotted, value)
    assert dvc_status(project, offline_env) == {"source": ["always changed"]}
    assert stages_run(repro(project, offline_env)) == ["source"]
    set_param(project, "runtime.threads.intra_op", 0)
    set_param(project, "runtime.threads.inter_op", 0)


def test_a_recipe_value_changes_the_stages_that_read_it_and_a_comment_nothing(own_project, offline_env):
    recipe = own_project / "recipes" / "default.yaml"
    recipe.write_text(f"# a note of the user's own\n{recipe.read_text()}")
    assert dvc_status(own_project, offline_env) == {"source": ["always changed"]}
    recipe.write_text("train:\n  epochs: 2\n")
    assert set(dvc_status(own_project, offline_env)) == {"source", "train@base-42", "evaluate", "predict", "export"}
    recipe.write_text("train: {}\nensemble:\n  tta_shift: 1\n")  # the train stage reads the train section alone
    assert set(dvc_status(own_project, offline_env)) == {"source", "evaluate", "predict", "export"}


def test_test_time_augmentation_changes_only_evaluate_predict_and_export(own_project, offline_env):
    set_param(own_project, "ensemble.tta_shift", 1)
    assert dvc_status(own_project, offline_env) == {
        "source": ["always changed"],
        "evaluate": params_changed("ensemble"),
        "predict": params_changed("ensemble"),
        "export": params_changed("ensemble.tta_shift"),
    }


def outputs_of_a_run(project):
    member = all_stages(project)[3].removeprefix("train@")
    return {
        name: (project / name).read_bytes()
        for name in (
            "data/prepared/train.npz",
            f"models/members/{member}.keras",
            f"dvclive/{member}/metrics.json",
            f"dvclive/{member}/plots/metrics/val/accuracy.tsv",
            "eval/metrics.json",
            "eval/plots/confusion/val.csv",
            "submissions/submission.csv",
        )
    }


def test_kill_9_of_train_then_repro_resumes_and_ends_as_if_never_killed(own_project, offline_env):
    # A member never trained before: otherwise DVC's run cache restores its model instead of training.
    set_param(own_project, "ensemble.seeds", [7])
    set_param(own_project, "train.epochs", 5)  # of the MLP, seconds each; resuming the CNN is test_train.py's
    killed = subprocess.Popen(
        ["dvc", "repro", "train@base-7"],  # the member alone: what follows it is tested elsewhere
        cwd=own_project,
        env=offline_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    while epochs_backed_up(own_project / "models/backup/base-7") < 1:
        assert killed.poll() is None
        time.sleep(0.05)
    os.killpg(killed.pid, signal.SIGKILL)  # dvc and the stage, as a crash or an OOM kill would
    killed.wait()
    assert not (own_project / "models/members/base-7.keras").exists()  # dvc removed it before running the stage

    output = repro(own_project, offline_env, "train@base-7")
    resumed_after = re.search(
        r"^train: resuming after epoch (\d) from the backup in models/backup/base-7/", output, re.M
    )
    assert resumed_after and 1 <= int(resumed_after.group(1)) < 5, output
    assert stages_run(output) == ["source", "train@base-7"]
    assert not list((own_project / "models/backup/base-7").iterdir())
    resumed = weights(own_project / "models/members/base-7.keras")

    repro(own_project, offline_env, "--force", "--single-item", "train@base-7")  # the same run, uninterrupted
    assert all(
        np.array_equal(a, b) for a, b in zip(weights(own_project / "models/members/base-7.keras"), resumed, strict=True)
    )


def test_added_members_train_alone_side_by_side_and_evaluate_scores_the_ensemble(own_project, offline_env):
    """README (Teams and scale): one `dvc repro -s` per new member at once; only they train, and the next
    `dvc repro` scores the ensemble with the first member restored, not retrained."""
    single = yaml.safe_load((own_project / "eval/scores.json").read_text())["test"]
    set_param(own_project, "ensemble.seeds", [42, 8, 9])
    set_param(own_project, "runtime.threads", {"intra_op": 1, "inter_op": 1})
    stale = dvc_status(own_project, offline_env)
    assert set(stale) == {"source", "train@base-8", "train@base-9", "evaluate", "predict", "export"}, stale
    members = [
        subprocess.Popen(
            ["dvc", "--wait-for-lock", "repro", "-s", f"train@base-{seed}"],
            cwd=own_project,
            env=offline_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for seed in (8, 9)
    ]
    outputs = [member.communicate(timeout=600)[0] for member in members]
    assert [member.returncode for member in members] == [0, 0], outputs
    assert [stages_run(output) for output in outputs] == [["train@base-8"], ["train@base-9"]]
    assert {"train@base-8", "train@base-9"} <= set(yaml.safe_load((own_project / "dvc.lock").read_text())["stages"])

    output = repro(own_project, offline_env)
    assert stages_run(output) == ["source", "evaluate", "predict", "export"]
    assert "Stage 'train@base-42' didn't change, skipping" in output
    ensemble = yaml.safe_load((own_project / "eval/scores.json").read_text())["test"]
    assert set(ensemble["members"]) == {"base-42", "base-8", "base-9"}
    assert ensemble["members"]["base-42"] == single["accuracy"]
    assert ensemble["accuracy"] >= min(ensemble["members"].values())
    shown = subprocess.run(
        ["dvc", "metrics", "show"], cwd=own_project, env=offline_env, capture_output=True, text=True, check=True
    ).stdout
    assert shown.split("\n")[0].split() == ["Path", "test.accuracy", "test.errors", "val.accuracy", "val.errors"]
    assert max(map(len, shown.splitlines())) <= 120


def test_adding_a_variant_trains_only_its_members_and_changing_it_changes_only_them(own_project, offline_env):
    set_param(own_project, "ensemble.variants", ["base", "slant"])
    stale = dvc_status(own_project, offline_env)
    assert set(stale) == {"source", "train@slant-42", "evaluate", "predict", "export"}, stale
    output = repro(own_project, offline_env, "train@slant-42")  # evaluate scoring a new member: the test above
    assert stages_run(output) == ["source", "train@slant-42"]
    slant = yaml.safe_load((own_project / "params.yaml").read_text())["variants"]["slant"]["augment"]["shear"]
    assert shear_factors(own_project / "models/members/slant-42.keras") == [slant]
    assert shear_factors(own_project / "models/members/base-42.keras") == []
    stale = dvc_status(own_project, offline_env)
    set_param(own_project, "variants.slant.augment.shear", slant / 2)
    assert dvc_status(own_project, offline_env) == {**stale, "train@slant-42": params_changed("variants.slant")}


def shear_factors(model_path):
    import keras

    from src.augmentation import RandomAffine

    return [
        layer.shear
        for layer in keras.models.load_model(model_path).layers
        if isinstance(layer, RandomAffine) and layer.shear
    ]


def weights(model_path):
    import keras

    return keras.models.load_model(model_path).get_weights()


def test_a_forced_rerun_repeats_every_result_byte_for_byte_and_a_retrained_member_changes_nothing_after_it(
    own_project, offline_env
):
    before = outputs_of_a_run(own_project)
    output = repro(own_project, offline_env, "--force", "--single-item", "train@base-42")
    assert stages_run(output) == ["train@base-42"]
    assert dvc_status(own_project, offline_env) == {"source": ["always changed"]}  # the same model, to the byte
    # Every other stage whose results outputs_of_a_run compares: export and plots_page only package them.
    rest = [stage for stage in all_stages(own_project) if stage not in ("train@base-42", "export", "plots_page")]
    output = repro(own_project, offline_env, "--force", "--single-item", *rest)
    assert stages_run(output) == rest
    after = outputs_of_a_run(own_project)
    assert after == before, {name for name in after if after[name] != before[name]}
    print("submission.csv sha256, both runs:", hashlib.sha256(after["submissions/submission.csv"]).hexdigest())


@pytest.mark.parametrize("module", ["src.source", "src.download", "src.prepare", "src.submit"])
def test_stages_that_need_no_tensorflow_do_not_load_it(module):
    # Loading TensorFlow takes seconds, and these need none of it; scikit-learn loads only when prepare splits.
    loaded = subprocess.run(
        [sys.executable, "-c", f"import sys, {module}; print(sorted(sys.modules))"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "'tensorflow'" not in loaded and "'keras'" not in loaded and "'sklearn'" not in loaded
