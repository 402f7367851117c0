import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import yaml

from conftest import TINY_TRAIN
from src.atomic import old_copy
from src import models
from src.models import cpu_has_bfloat16, precision_policy
from src.train import backup_dir, train
from workdir import ROOT, epochs_backed_up, make_workdir


def test_the_model_learns_and_is_saved(trained_model, prepared_dir):
    model = keras.models.load_model(trained_model)
    val = np.load(prepared_dir / "val.npz")
    accuracy = (model.predict(val["x"], verbose=0).argmax(axis=1) == val["y"]).mean()
    assert accuracy > 0.5  # chance is 0.1; two epochs on 400 digits reach about 0.8


def test_each_epoch_is_logged_for_dvc(trained_model):
    live = trained_model.parent / "dvclive"
    metrics = json.loads((live / "metrics.json").read_text())
    assert metrics["step"] == TINY_TRAIN["epochs"] - 1
    assert {"accuracy", "loss", "learning_rate"} <= set(metrics["train"])
    assert {"accuracy", "loss"} <= set(metrics["eval"])
    curve = (live / "plots" / "metrics" / "eval" / "accuracy.tsv").read_text().splitlines()
    assert curve[0] == "step\taccuracy" and len(curve) == 1 + TINY_TRAIN["epochs"]


def test_learning_rate_is_reduced_on_plateau(prepared_dir, tmp_path):
    # min_delta 1 makes every epoch after the first a plateau, so each halves the rate for the next.
    params = {**TINY_TRAIN, "arch": "mlp", "optimizer": "sgd", "learning_rate": 0.01, "epochs": 3,
              "reduce_lr": {"monitor": "val_loss", "factor": 0.5, "patience": 0, "min_lr": 1e-5, "min_delta": 1}}
    train(prepared_dir / "train.npz", prepared_dir / "val.npz", tmp_path / "m.keras", tmp_path / "live", params, 1,
          tmp_path / "backup")
    assert logged_rates(tmp_path / "live") == [0.01, 0.01, 0.005]


def logged_rates(live_dir):
    """The learning rate logged after each epoch: the one the next epoch starts with."""
    rates = (live_dir / "plots" / "metrics" / "train" / "learning_rate.tsv").read_text().split()[3::2]
    return [round(float(rate), 7) for rate in rates]


@pytest.mark.parametrize("schedule, settings, rates", [
    # 0.001 × 0.5^epoch, by whole epochs.
    ("exponential", {"decay_rate": 0.5}, [0.0005, 0.00025, 0.000125, 0.0000625]),
    # Up from 0.0001 to 0.001 over the first two epochs, then a cosine down to 0 over the last two.
    ("one_cycle", {"warmup_fraction": 0.5}, [0.00055, 0.001, 0.0005, 0.0]),
])
def test_learning_rate_schedules(prepared_dir, tmp_path, schedule, settings, rates):
    params = {**TINY_TRAIN, "arch": "mlp", "epochs": 4, "schedule": schedule, **settings}
    train(prepared_dir / "train.npz", prepared_dir / "val.npz", tmp_path / "m.keras", tmp_path / "live", params, 1,
          tmp_path / "backup")
    assert logged_rates(tmp_path / "live") == pytest.approx(rates, abs=1e-7)


def test_thread_settings_reach_tensorflow():
    code = ("from src.train import set_threads, tf; set_threads({'intra_op': 1, 'inter_op': 3}); "
            "print(tf.config.threading.get_intra_op_parallelism_threads(), "
            "tf.config.threading.get_inter_op_parallelism_threads())")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["1", "3"]


class StepCount(keras.callbacks.Callback):
    steps, logs = 0, {}

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1

    def on_epoch_end(self, epoch, logs=None):
        self.logs = logs


def test_a_final_fit_trains_on_both_splits_and_watches_nothing(prepared_dir, tmp_path):
    params = {**TINY_TRAIN, "arch": "mlp", "epochs": 1, "schedule": "exponential", "final_fit": True}
    counter = StepCount()
    train(prepared_dir / "train.npz", prepared_dir / "val.npz", tmp_path / "m.keras", tmp_path / "live", params, 1,
          tmp_path / "backup", callbacks=[counter])
    assert counter.steps == 16  # 400 + 100 images in batches of 32; the train split alone makes 13
    assert not any(name.startswith("val_") for name in counter.logs)


@pytest.mark.parametrize("final_fit", [False, True])
def test_batch_norm_is_recalibrated_on_the_training_digits_before_the_model_is_saved(prepared_dir, tmp_path, final_fit):
    params = {**TINY_TRAIN, "arch": "bn_cnn", "epochs": 1, "schedule": "exponential", "final_fit": final_fit,
              "augment": {**TINY_TRAIN["augment"], "rotation": 15, "zoom": 0.15}}
    saved = {}
    for recalibrate in (True, False):
        train(prepared_dir / "train.npz", prepared_dir / "val.npz", tmp_path / f"{recalibrate}.keras",
              tmp_path / f"live{recalibrate}", {**params, "recalibrate_batch_norm": recalibrate}, 1,
              tmp_path / f"backup{recalibrate}")
        saved[recalibrate] = keras.models.load_model(tmp_path / f"{recalibrate}.keras")
    # A run trains alike either way, so recalibrating the other run's model gives this one's.
    digits = np.load(prepared_dir / "train.npz")["x"]
    if final_fit:
        digits = np.concatenate([digits, np.load(prepared_dir / "val.npz")["x"]])
    assert not all(np.allclose(a, b) for a, b in zip(saved[True].non_trainable_weights, saved[False].non_trainable_weights))
    recalibrated = models.recalibrate_batch_norm(saved[False], digits)
    for a, b in zip(saved[True].get_weights(), recalibrated.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_a_final_fit_refuses_a_schedule_that_watches_the_validation_split(prepared_dir, tmp_path):
    with pytest.raises(ValueError, match="train.final_fit leaves no validation split for the plateau schedule"):
        train(prepared_dir / "train.npz", prepared_dir / "val.npz", tmp_path / "m.keras", tmp_path / "live",
              {**TINY_TRAIN, "final_fit": True}, 1, tmp_path / "backup")
    assert not (tmp_path / "m.keras").exists()


def run_train(workdir, prepared_dir, name):
    return subprocess.Popen(
        [sys.executable, "-m", "src.train", "--variant", "base", "--seed", "1", prepared_dir, f"{name}.keras",
         f"{name}_live", f"{name}_backup"],
        cwd=workdir, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True,
    )


def test_a_killed_run_resumes_and_ends_exactly_like_an_uninterrupted_one(prepared_dir, tmp_path):
    # patience 2 with min_delta 1 lowers the rate after the third epoch, but only if the plateau counters
    # survive the kill after the second.
    params = {**TINY_TRAIN, "epochs": 4,
              "reduce_lr": {"monitor": "val_loss", "factor": 0.5, "patience": 2, "min_lr": 1e-5, "min_delta": 1}}
    workdir = make_workdir(tmp_path)
    (workdir / "params.yaml").write_text(yaml.safe_dump({"train": params, "variants": {"base": {}}}))
    uninterrupted = run_train(workdir, prepared_dir, "whole")
    assert uninterrupted.wait() == 0, uninterrupted.stdout.read()

    killed = run_train(workdir, prepared_dir, "resumed")
    while epochs_backed_up(workdir / "resumed_backup") < 2:
        assert killed.poll() is None, killed.stdout.read()
        time.sleep(0.02)
    killed.send_signal(signal.SIGKILL)  # at once: the third epoch has just begun
    assert killed.wait() == -signal.SIGKILL
    assert epochs_backed_up(workdir / "resumed_backup") == 2 and not (workdir / "resumed.keras").exists()

    resumed = run_train(workdir, prepared_dir, "resumed")
    output = resumed.communicate()[0]
    assert resumed.returncode == 0, output
    assert "train: resuming after epoch 2 from the backup in resumed_backup/" in output
    assert "Epoch 2/4" not in output and "Epoch 3/4" in output
    assert not list((workdir / "resumed_backup").iterdir())  # a finished run leaves no backup behind

    whole, resumed = (keras.models.load_model(workdir / f"{name}.keras") for name in ("whole", "resumed"))
    assert all(np.array_equal(a, b) for a, b in zip(whole.get_weights(), resumed.get_weights()))
    for curve in ("train/learning_rate.tsv", "eval/accuracy.tsv"):
        expected = (workdir / "whole_live/plots/metrics" / curve).read_text()
        assert (workdir / "resumed_live/plots/metrics" / curve).read_text() == expected
    assert logged_rates(workdir / "whole_live") == [0.001, 0.001, 0.001, 0.0005]


def test_a_backup_moved_aside_by_a_kill_is_put_back_not_discarded(prepared_dir, tmp_path):
    inputs = (prepared_dir / "train.npz", prepared_dir / "val.npz")
    path = backup_dir(tmp_path, TINY_TRAIN, *inputs)
    aside = old_copy(path)
    aside.mkdir()
    (aside / "training_metadata.json").write_text('{"epoch": 2, "batch": -1}')
    assert backup_dir(tmp_path, TINY_TRAIN, *inputs) == path
    assert epochs_backed_up(tmp_path) == 2


def test_a_backup_of_other_params_is_discarded(prepared_dir, tmp_path):
    inputs = (prepared_dir / "train.npz", prepared_dir / "val.npz")
    kept = backup_dir(tmp_path, TINY_TRAIN, *inputs)
    kept.mkdir()
    assert backup_dir(tmp_path, TINY_TRAIN, *inputs) == kept and kept.exists()
    other = backup_dir(tmp_path, {**TINY_TRAIN, "learning_rate": 0.01}, *inputs)
    assert other != kept and not kept.exists()


class Killed(Exception):
    pass


class KillAtSecondEpoch(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 1:
            raise Killed  # after the first epoch's backup


def test_a_backup_made_in_another_precision_is_not_resumed(prepared_dir, tmp_path, monkeypatch, capsys):
    params = {**TINY_TRAIN, "arch": "mlp", "epochs": 2, "precision": "auto"}
    inputs = (prepared_dir / "train.npz", prepared_dir / "val.npz")
    backup, aside = tmp_path / "backup", tmp_path / "aside"

    def train_on(cpu_bfloat16, **options):
        monkeypatch.setattr(models, "cpu_has_bfloat16", lambda: cpu_bfloat16)
        capsys.readouterr()
        model = train(*inputs, tmp_path / "m.keras", tmp_path / "live", params, 1, backup, **options)
        return model, capsys.readouterr().out

    with pytest.raises(Killed):  # killed on a CPU where auto is float32
        train_on(False, callbacks=[KillAtSecondEpoch()])
    assert epochs_backed_up(backup) == 1
    shutil.copytree(backup, aside)
    model, output = train_on(True)  # the workspace moved to a CPU with bfloat16
    assert "resuming" not in output and "Epoch 1/2" in output
    assert model.layers[0].dtype_policy.name == "mixed_bfloat16"
    shutil.rmtree(backup)
    aside.rename(backup)
    model, output = train_on(False)  # where it was made, the same backup is resumed
    assert "train: resuming after epoch 1" in output and "Epoch 1/2" not in output
    assert model.layers[0].dtype_policy.name == "float32"


MIRRORED = """
import json, sys
import numpy as np
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from src.train import train

prepared, out, params = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
val = np.load(f"{prepared}/val.npz")
accuracy = {}
for name, strategy in [("one", tf.distribute.get_strategy()), ("mirrored", tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))]:
    model = train(f"{prepared}/train.npz", f"{prepared}/val.npz", f"{out}/{name}.keras", f"{out}/{name}_live", params,
                  1, f"{out}/{name}_backup", strategy)
    accuracy[name] = float((model.predict(val["x"], verbose=0).argmax(axis=1) == val["y"]).mean())
    accuracy[name + "_replicas"] = strategy.num_replicas_in_sync
print(json.dumps(accuracy))
"""

FAST_TRAIN = {**TINY_TRAIN, "arch": "mlp", "epochs": 4, "batch_size": 16,
              "lr_scaling": {"rule": "linear", "base_batch_size": 16}}


def test_mirrored_over_two_cpus_matches_one_device(prepared_dir, tmp_path):
    result = subprocess.run([sys.executable, "-c", MIRRORED, prepared_dir, tmp_path, json.dumps(FAST_TRAIN)],
                            cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    accuracy = json.loads(result.stdout.splitlines()[-1])
    assert accuracy["one_replicas"] == 1 and accuracy["mirrored_replicas"] == 2
    assert accuracy["one"] > 0.6  # chance is 0.1
    # Twice the batch at twice the rate: the same number of images seen, within 100 digits' noise.
    assert abs(accuracy["mirrored"] - accuracy["one"]) <= 0.1, accuracy


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
        workdir = make_workdir(tmp_path / f"worker{index}")
        (workdir / "params.yaml").write_text(yaml.safe_dump({"train": {**FAST_TRAIN, "epochs": 2,
                                                                        "strategy": "multiworker"},
                                                              "variants": {"base": {}}}))
        env = {**os.environ, "PYTHONPATH": str(ROOT),
               "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})}
        workers.append(subprocess.Popen([sys.executable, "-m", "src.train", "--variant", "base", "--seed", "1",
                                         prepared_dir, "model.keras", "dvclive", "backup"], cwd=workdir, env=env,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    outputs = [worker.communicate(timeout=600)[0] for worker in workers]
    for worker, output in zip(workers, outputs):
        assert worker.returncode == 0, output
        assert "Epoch 2/2" in output
    chief, other = tmp_path / "worker0", tmp_path / "worker1"
    assert keras.models.load_model(chief / "model.keras").count_params() > 0
    assert json.loads((chief / "dvclive/metrics.json").read_text())["step"] == 1
    assert sorted(p.name for p in other.iterdir()) == ["params.yaml"]  # no model, metrics or backup


def test_precision_auto_follows_this_cpu_and_a_named_policy_is_used(prepared_dir, tmp_path):
    assert precision_policy("auto") == ("mixed_bfloat16" if cpu_has_bfloat16() else "float32")  # tests run on a CPU
    params = {**TINY_TRAIN, "arch": "mlp", "epochs": 1, "precision": "mixed_bfloat16"}
    model = train(prepared_dir / "train.npz", prepared_dir / "val.npz", tmp_path / "m.keras", tmp_path / "live",
                  params, 1, tmp_path / "backup")
    assert model.layers[1].dtype_policy.name == "mixed_bfloat16" and model.layers[1].compute_dtype == "bfloat16"
    assert model.layers[-1].compute_dtype == "float32"  # the softmax
    assert keras.config.dtype_policy().name == "float32"  # the global policy is left alone
    assert keras.models.load_model(tmp_path / "m.keras").predict(np.zeros((2, 28, 28, 1), np.uint8),
                                                                 verbose=0).dtype == np.float32

