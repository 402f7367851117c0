"""The stage entry, `python -m src.train`, run as DVC runs it: a subprocess in a folder with params.yaml."""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

import keras
import numpy as np

from conftest import TINY, tiny_train
from src import config
from workdir import ROOT, epochs_backed_up, make_workdir, set_param


def stage_workdir(path, changes):
    """A folder with params.yaml whose `train` is tiny_train(changes): TINY's settings, then changes."""
    workdir = make_workdir(path)
    for dotted, value in {**TINY, **{f"train.{name}": value for name, value in changes.items()}}.items():
        set_param(workdir, dotted, value)
    assert config.load(workdir / "params.yaml").member_train("base") == tiny_train(changes)
    return workdir


def run_train(workdir, prepared_dir, name):
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "src.train",
            "--variant",
            "base",
            "--seed",
            "1",
            prepared_dir,
            f"{name}.keras",
            f"{name}_live",
            f"{name}_backup",
        ],
        cwd=workdir,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def logged_rates(live_dir):
    """The learning rate logged after each epoch: the one that epoch trained with."""
    rates = (live_dir / "plots" / "metrics" / "train" / "learning_rate.tsv").read_text().split()[3::2]
    return [round(float(rate), 7) for rate in rates]


def test_a_competition_sized_validation_split_trains_without_a_tensorflow_log_line(prepared_dir, tmp_path):
    """With op determinism on (params.yaml's default), TensorFlow logs an error-level line about a tf.data
    attribute when fit is given validation arrays of a few MB, as the competition's 8,400 digits are; the
    stage gives them as batches, and a good run prints no such line."""
    big = tmp_path / "prepared"
    big.mkdir()
    shutil.copyfile(prepared_dir / "train.npz", big / "train.npz")  # the stage reads train and val alone
    with np.load(prepared_dir / "val.npz") as val:
        np.savez(big / "val.npz", x=np.tile(val["x"], (84, 1, 1, 1)), y=np.tile(val["y"], 84))  # 8,400 digits
    workdir = stage_workdir(tmp_path, {"epochs": 1, "arch": "mlp"})  # the line comes whatever the net
    assert config.load(workdir / "params.yaml").train.deterministic
    output = run_train(workdir, big, "member").communicate(timeout=600)[0]
    assert "train@base-1: 1 epoch" in output, output
    assert not re.search(r"^[IWEF]\d{4} |NodeDef", output, re.MULTILINE), output


def test_a_killed_run_resumes_and_ends_exactly_like_an_uninterrupted_one(plateau_dir, tmp_path):
    # plateau_dir's validation accuracy never improves after the first epoch, so patience 2 lowers the rate
    # after the third epoch, but only if the plateau counters survive the kill after the second.
    workdir = stage_workdir(
        tmp_path,
        {
            "epochs": 4,
            "learning_rate": 0.001,
            "schedule": "plateau",
            "deterministic": True,
            "reduce_lr.monitor": "val_accuracy",
            "reduce_lr.factor": 0.5,
            "reduce_lr.patience": 2,
            "reduce_lr.min_lr": 1e-5,
        },
    )
    uninterrupted = run_train(workdir, plateau_dir, "whole")
    assert uninterrupted.wait() == 0, uninterrupted.stdout.read()

    killed = run_train(workdir, plateau_dir, "resumed")
    while epochs_backed_up(workdir / "resumed_backup") < 2:
        assert killed.poll() is None, killed.stdout.read()
        time.sleep(0.02)
    killed.send_signal(signal.SIGKILL)  # at once: the third epoch has just begun
    assert killed.wait() == -signal.SIGKILL
    assert epochs_backed_up(workdir / "resumed_backup") == 2 and not (workdir / "resumed.keras").exists()

    resumed = run_train(workdir, plateau_dir, "resumed")
    output = resumed.communicate()[0]
    assert resumed.returncode == 0, output
    assert "train: resuming after epoch 2 from the backup in resumed_backup/" in output
    assert "Epoch 2/4" not in output and "Epoch 3/4" in output
    assert not list((workdir / "resumed_backup").iterdir())  # a finished run leaves no backup behind

    whole, resumed = (keras.models.load_model(workdir / f"{name}.keras") for name in ("whole", "resumed"))
    assert all(np.array_equal(a, b) for a, b in zip(whole.get_weights(), resumed.get_weights(), strict=True))
    # The validation accuracy is 0.1 throughout; its loss, and the training curves, follow the training.
    for curve in (
        "train/learning_rate.tsv",
        "train/loss.tsv",
        "train/accuracy.tsv",
        "val/loss.tsv",
        "val/accuracy.tsv",
    ):
        expected = (workdir / "whole_live/plots/metrics" / curve).read_text()
        assert (workdir / "resumed_live/plots/metrics" / curve).read_text() == expected
    assert logged_rates(workdir / "whole_live") == [0.001, 0.001, 0.001, 0.0005]


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_two_worker_processes_train_and_only_the_chief_writes(prepared_dir, tmp_path):
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(2)]}
    workers = []
    for index in range(2):
        workdir = stage_workdir(
            tmp_path / f"worker{index}",
            {
                "arch": "mlp",
                "epochs": 2,
                "batch_size": 16,
                "lr_scaling.rule": "linear",
                "lr_scaling.base_batch_size": 16,
                "strategy": "multiworker",
            },
        )
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}),
        }
        workers.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "src.train",
                    "--variant",
                    "base",
                    "--seed",
                    "1",
                    prepared_dir,
                    "model.keras",
                    "dvclive",
                    "backup",
                ],
                cwd=workdir,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    outputs = [worker.communicate(timeout=600)[0] for worker in workers]
    for worker, output in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, output
        assert "Epoch 2/2" in output
    chief, other = tmp_path / "worker0", tmp_path / "worker1"
    assert keras.models.load_model(chief / "model.keras").count_params() > 0
    assert json.loads((chief / "dvclive/metrics.json").read_text())["step"] == 1
    assert sorted(p.name for p in other.iterdir()) == ["params.yaml", "recipes"]  # no model, metrics or backup


# The stage with its training swapped for a report of TensorFlow's thread pools at the moment it would train.
THREADS_AT_TRAINING = """
import tensorflow as tf
from src import train as stage, training

def report(*args, **kwargs):
    print("threads", tf.config.threading.get_intra_op_parallelism_threads(),
          tf.config.threading.get_inter_op_parallelism_threads())

training.train = report  # the stage imports it as it starts its work
stage.main()
"""


def test_the_runtime_thread_settings_reach_tensorflow_before_training(tmp_path):
    workdir = make_workdir(tmp_path)
    set_param(workdir, "runtime.threads.intra_op", 1)
    set_param(workdir, "runtime.threads.inter_op", 3)
    assert config.load(workdir / "params.yaml").runtime.threads == config.Threads(intra_op=1, inter_op=3)
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            THREADS_AT_TRAINING,
            "--variant",
            "base",
            "--seed",
            "1",
            "prepared",
            "m.keras",
            "live",
            "backup",
        ],
        cwd=workdir,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "threads 1 3" in result.stdout.splitlines()
