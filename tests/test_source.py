import json
import subprocess
import sys

import pytest

from src.source import choose_source
from src.source_record import read_source, write_source
from workdir import ROOT, environment_without_kaggle, make_workdir, run_module, set_param


def test_auto_chooses_kaggle_only_with_credentials():
    assert choose_source("auto", credentials_found=True)[0] == "kaggle"
    source, reason = choose_source("auto", credentials_found=False)
    assert source == "sample" and "No Kaggle credentials" in reason


@pytest.mark.parametrize("requested", ["kaggle", "sample"])
def test_an_explicit_source_wins(requested):
    assert choose_source(requested, credentials_found=requested == "sample")[0] == requested


def test_auto_without_credentials_keeps_the_kaggle_data_already_here():
    # A teammate who pulled the team's Kaggle data from the DVC remote, with no Kaggle account.
    source, reason = choose_source("auto", credentials_found=False, previous_source="kaggle", raw_data_here=True)
    assert source == "kaggle" and "the competition data is already here (from a previous run or `dvc pull`)" in reason


@pytest.mark.parametrize("previous_source, raw_data_here", [("kaggle", False), ("sample", True), (None, True)])
def test_auto_without_credentials_uses_the_sample_unless_kaggle_data_is_here(previous_source, raw_data_here):
    assert choose_source("auto", False, previous_source, raw_data_here)[0] == "sample"


def test_an_explicit_sample_wins_over_kaggle_data_already_here():
    assert choose_source("sample", False, previous_source="kaggle", raw_data_here=True)[0] == "sample"


@pytest.mark.parametrize("raw_data_here, expected", [(True, "kaggle"), (False, "sample")])
def test_the_stage_keeps_kaggle_when_the_last_run_chose_it_and_the_data_is_here(tmp_path, raw_data_here, expected):
    workdir = make_workdir(tmp_path / "project")
    write_source(workdir / "data/source.json", "kaggle")
    if raw_data_here:
        (workdir / "data/raw").mkdir(parents=True)
    home = tmp_path / "home"
    home.mkdir()
    result = run_module(workdir, "src.source", "data/source.json", "data/raw", env=environment_without_kaggle(home))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"source: using '{expected}'.") and len(result.stdout.splitlines()) == 2
    assert result.stdout.splitlines()[1] == "source: recipe default; 1 member (base-42)"
    assert read_source(workdir / "data/source.json") == expected


@pytest.mark.parametrize("requested", ["kaggle", "sample"])
def test_the_stage_uses_the_source_params_yaml_names(tmp_path, requested):
    workdir = make_workdir(tmp_path / "project")
    set_param(workdir, "data.source", requested)
    home = tmp_path / "home"
    home.mkdir()
    result = run_module(workdir, "src.source", "data/source.json", "data/raw", env=environment_without_kaggle(home))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"source: using '{requested}'. data.source is '{requested}'.")
    assert read_source(workdir / "data/source.json") == requested


def run_source_with_kaggle_json(tmp_path, mode):
    """Run the stage with credentials in ~/.kaggle/kaggle.json of the given mode; returns (result, file, key)."""
    home = tmp_path / "home"
    kaggle_json = home / ".kaggle" / "kaggle.json"
    kaggle_json.parent.mkdir(parents=True)
    key = "fake-key-0123456789abcdef"
    kaggle_json.write_text(json.dumps({"username": "fake-user", "key": key}))
    kaggle_json.chmod(mode)
    result = run_module(
        make_workdir(tmp_path / "project"),
        "src.source",
        "data/source.json",
        "data/raw",
        env=environment_without_kaggle(home),
    )
    return result, kaggle_json, key


def test_a_kaggle_json_others_can_read_is_warned_about(tmp_path):
    result, kaggle_json, key = run_source_with_kaggle_json(tmp_path, 0o644)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("source: using 'kaggle'. Kaggle credentials were found")
    assert result.stderr.splitlines() == [
        f"source: warning: {kaggle_json} holds Kaggle credentials and other "
        f"users can read it: run `chmod 600 {kaggle_json}`."
    ]
    assert key not in result.stdout + result.stderr


def test_a_private_kaggle_json_is_not_warned_about(tmp_path):
    result, _, key = run_source_with_kaggle_json(tmp_path, 0o600)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("source: using 'kaggle'.") and result.stderr == ""


def test_the_stage_stays_light():
    # It runs on every `dvc repro`: importing kaggle (which authenticates) or TensorFlow would slow every run.
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, src.source; print(' '.join(sys.modules))"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert not {"kaggle", "kagglesdk", "tensorflow", "keras"} & set(loaded)


def test_the_stage_refuses_a_source_it_does_not_know_and_records_nothing(tmp_path):
    # choose_source trusts its caller: the stage's params.yaml check is what keeps 'kagle' out of data/source.json.
    workdir = make_workdir(tmp_path / "project")
    set_param(workdir, "data.source", "kagle")
    result = run_module(workdir, "src.source", "data/source.json", "data/raw", env=environment_without_kaggle(tmp_path))
    assert result.returncode == 1
    [message] = result.stderr.splitlines()
    assert message.startswith("source: error: params.yaml: data.source is 'kagle'")
    assert result.stdout == "" and not (workdir / "data").exists()


def test_auto_prefers_the_competition_files_already_here():
    source, reason = choose_source("auto", True, local_dir="/kaggle/input/digit-recognizer")
    assert source == "local" and "/kaggle/input/digit-recognizer" in reason
    assert choose_source("auto", False, "local", raw_data_here=True)[0] == "local"  # pulled, the folder gone
    assert choose_source("sample", True, local_dir="/kaggle/input/digit-recognizer")[0] == "sample"


def test_the_stage_chooses_a_local_folder_that_holds_the_files_and_says_why(tmp_path):
    workdir = make_workdir(tmp_path / "project")
    local = tmp_path / "input"
    local.mkdir()
    set_param(workdir, "data.local_dir", str(local))
    env = environment_without_kaggle(tmp_path / "home")
    result = run_module(workdir, "src.source", "data/source.json", "data/raw", env=env)
    assert "using 'sample'" in result.stdout  # an empty folder is no source
    for name in ("train.csv", "test.csv", "sample_submission.csv"):
        (local / name).write_text("")
    result = run_module(workdir, "src.source", "data/source.json", "data/raw", env=env)
    assert result.stdout.startswith(f"source: using 'local'. the competition files are in {local}")
    assert read_source(workdir / "data" / "source.json") == "local"
