"""What a user can break, tried on `dvc repro` as a user runs it: each failure is one line naming what and where,
and the workspace keeps what it had; a stopped `dvc repro` leaves no stage running."""

import os
import signal
import subprocess
import time

import psutil
import pytest

from workdir import environment_without_kaggle, epochs_backed_up, repro, run_module, set_param, stages_run

KEPT = [
    "submissions/submission.csv",
    "submissions/submission.json",
    "models/members/base-42.keras",
    "eval/metrics.json",
    "data/prepared/train.npz",
]


@pytest.fixture(scope="module")
def offline_env(tmp_path_factory):
    return environment_without_kaggle(tmp_path_factory.mktemp("home"))


def contents(project):
    return {name: (project / name).read_bytes() for name in KEPT}


def failed_repro(project, env):
    result = subprocess.run(["dvc", "repro"], cwd=project, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode != 0
    return result.stdout + result.stderr


@pytest.mark.parametrize(
    "dotted, value, line",
    [
        ("train.learning_rate", -0.1, "train.learning_rate is -0.1; it must be greater than 0"),
        ("train.epochs", 0, "train.epochs is 0; it must be greater than or equal to 1"),
        ("train.epochs", "ten", "train.epochs is 'ten'; it must be a valid integer"),
        ("train.batch_size", 0, "train.batch_size is 0; it must be greater than or equal to 1"),
        ("prepare.val_fraction", 1.5, "prepare.val_fraction is 1.5; it must be less than 1"),
        ("train.optimizer", "adamz", "train.optimizer is 'adamz'; it must be 'adam', 'adamw'"),
        ("ensemble.variants", ["base", "slnat"], "ensemble.variants names 'slnat', which `variants` does not define"),
        ("train.final_fit", True, "train.final_fit is true with the plateau schedule"),
    ],
)
def test_a_bad_param_stops_the_run_before_any_output_changes(project, offline_env, dotted, value, line):
    before = contents(project)
    good = (project / "params.yaml").read_text()
    set_param(project, dotted, value)
    try:
        output = failed_repro(project, offline_env)
    finally:
        (project / "params.yaml").write_text(good)
    assert f"source: error: params.yaml: {line}" in output
    assert "Traceback" not in output and stages_run(output) == ["source"]
    assert contents(project) == before


def test_no_seeds_at_all_is_refused_before_any_output_changes(project, offline_env):
    before = contents(project)
    good = (project / "params.yaml").read_text()
    set_param(project, "ensemble.seeds", [])
    try:
        output = failed_repro(project, offline_env)
    finally:
        (project / "params.yaml").write_text(good)
    assert "Traceback" not in output and stages_run(output) == ["source"], output
    assert contents(project) == before


def test_a_broken_kaggle_json_is_named_and_the_run_goes_on_with_the_sample(project, offline_env, tmp_path):
    home = tmp_path / "home"
    (home / ".kaggle").mkdir(parents=True)
    (home / ".kaggle" / "kaggle.json").write_text('{"username": "someone"')
    before = contents(project)
    output = repro(project, {**offline_env, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config")})
    assert f"source: warning: {home}/.kaggle/kaggle.json: is not valid JSON" in output
    assert "source: using 'sample'" in output and stages_run(output) == ["source"]
    assert contents(project) == before


def stage_process(dvc, module, timeout=120):
    """The process running `python -m <module>` under dvc, once it is there."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for child in psutil.Process(dvc.pid).children(recursive=True):
            try:
                if module in " ".join(child.cmdline()):
                    return child
            except psutil.NoSuchProcess:
                continue
        assert dvc.poll() is None, "dvc ended before the stage started"
        time.sleep(0.05)
    raise AssertionError(f"no {module} under dvc within {timeout} s")


@pytest.mark.parametrize("signal_number", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_stopping_dvc_ends_the_stage_which_writes_nothing_after(project, offline_env, signal_number):
    seed = 100 + signal_number  # a member never trained: DVC's run cache cannot restore it
    set_param(project, "ensemble.seeds", [seed])
    set_param(project, "train.epochs", 30)
    try:
        dvc = subprocess.Popen(
            ["dvc", "repro"],
            cwd=project,
            env=offline_env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        train = stage_process(dvc, "src.train")
        while epochs_backed_up(project / f"models/backup/base-{seed}") < 1:  # training, as a user would stop it
            assert train.is_running()
            time.sleep(0.05)
        os.kill(dvc.pid, signal_number)  # DVC alone, as `kill` or a closed terminal would
        dvc.wait(timeout=60)
        gone, alive = psutil.wait_procs([train], timeout=10)
        assert not alive, "the train stage outlived dvc"
        time.sleep(1)
        assert not (project / f"models/members/base-{seed}.keras").exists()
    finally:
        os.killpg(dvc.pid, signal.SIGKILL) if dvc.poll() is None else None
        set_param(project, "ensemble.seeds", [42])
        set_param(project, "train.epochs", 1)


@pytest.mark.parametrize(
    "damaged, module, arguments, advice",
    [
        (
            "models/members/base-42.keras",
            "src.evaluate",
            ["models/members", "data/prepared", "eval"],
            "not a readable Keras model (ValueError: truncated or damaged?); "
            "`dvc repro --force -s train@base-42` trains it again",
        ),
        (
            "data/prepared/train.npz",
            "src.train",
            ["--variant", "base", "--seed", "42", "data/prepared", "m.keras", "live", "backup"],
            "not a readable NumPy archive (BadZipFile: missing, truncated or damaged?); "
            "`dvc repro --force -s prepare` writes it again",
        ),
    ],
    ids=["truncated model", "truncated split"],
)
def test_a_damaged_file_is_named_in_one_line(project, offline_env, damaged, module, arguments, advice):
    path = project / damaged
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) // 3])
    try:
        result = run_module(project, module, *arguments, env=offline_env)
    finally:
        path.write_bytes(whole)
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == f"{module.split('.')[1]}: error: {damaged}: {advice}"
    assert "Traceback" not in result.stderr
