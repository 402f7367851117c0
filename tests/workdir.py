"""Run a stage module the way DVC does: a subprocess in a folder with params.yaml."""

import base64
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def kaggle_secrets(env):
    """The key in a test's Kaggle environment, and the Basic Authorization value the client builds from it."""
    return env["KAGGLE_KEY"], base64.b64encode(f"{env['KAGGLE_USERNAME']}:{env['KAGGLE_KEY']}".encode()).decode()


def assert_no_secret(env, *texts):
    """Neither of kaggle_secrets(env) is in any of texts."""
    for text in texts:
        for secret in kaggle_secrets(env):
            assert secret not in text


def environment_without_kaggle(home):
    """This process's environment with no Kaggle credentials to find: no KAGGLE_ variables, an empty home."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAGGLE_")}
    return {**env, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config")}


def make_workdir(path):
    path.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "params.yaml", path / "params.yaml")
    shutil.copytree(ROOT / "recipes", path / "recipes", dirs_exist_ok=True)
    return path


def run_module(workdir, module, *args, env=None):
    env = dict(env or os.environ)
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-m", module, *map(str, args)],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def epochs_backed_up(backup_root):
    """How many epochs the training backup under backup_root holds; 0 when there is none."""
    # Not the hidden folders of a backup being written: only the one that a resume reads.
    metadata = list(Path(backup_root).glob("[!.]*/training_metadata.json"))
    return json.loads(metadata[0].read_text())["epoch"] if metadata else 0


def git(cwd, *args, input=None):
    """git's stdout, stripped; commits are made as a test user."""
    return subprocess.run(
        ["git", "-c", "user.name=test", "-c", "user.email=test@example.com", *args],
        cwd=cwd,
        input=input,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def commit_all(project, message):
    git(project, "add", "-A")
    git(project, "commit", "-qm", message)


def set_param(project, dotted, value):
    params = yaml.safe_load((project / "params.yaml").read_text())
    *sections, key = dotted.split(".")
    node = params
    for section in sections:
        node = node[section]
    node[key] = value
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def project_copy(path, **params):
    """A git repo at path with this repo's tracked files and params (dotted name: value) set, committed."""
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, check=True, capture_output=True, text=True)
    for name in filter(None, tracked.stdout.split("\0")):
        if (ROOT / name).is_file():
            (path / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, path / name)
    for dotted, value in params.items():
        set_param(path, dotted, value)
    git(path, "init", "-q")
    commit_all(path, "copy")
    return path


def repro(project, env, *options):
    """`dvc repro` in project; its stdout and stderr."""
    result = subprocess.run(
        ["dvc", "repro", *options], cwd=project, env=env, capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def dvc(project, env, *args):
    """`dvc <args>` in project; its stdout, or a failed assertion with all it printed."""
    result = subprocess.run(["dvc", *args], cwd=project, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"dvc {' '.join(args)}:\n{result.stdout}{result.stderr}"
    return result.stdout


def dvc_status(project, env):
    """`dvc status --json`: the stages whose own deps or params changed, which `dvc repro` reruns with those after."""
    return json.loads(dvc(project, env, "status", "--json"))


def stages_run(output):
    return re.findall(r"Running stage '([\w@-]+)'", output)


def ctrl_c_as_in_a_terminal():
    """A Popen preexec_fn: CI may run the tests with SIGINT ignored, and children inherit that."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
