"""Run a stage module the way DVC does: a subprocess in a folder with params.yaml."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def environment_without_kaggle(home):
    """This process's environment with no Kaggle credentials to find: no KAGGLE_ variables, an empty home."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAGGLE_")}
    return {**env, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config")}


def make_workdir(path):
    path.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "params.yaml", path / "params.yaml")
    return path


def run_module(workdir, module, *args, env=None):
    env = dict(env or os.environ)
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], cwd=workdir, env=env,
                          capture_output=True, text=True, timeout=300)


def epochs_backed_up(backup_root):
    """How many epochs the training backup under backup_root holds; 0 when there is none."""
    metadata = list(Path(backup_root).glob("*/training_metadata.json"))
    return json.loads(metadata[0].read_text())["epoch"] if metadata else 0
