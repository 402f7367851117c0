import dataclasses
import json
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest

from conftest import TINY, TINY_TRAIN, tiny_train
from src import device_policy
from src.atomic import old_copy
from src.device_policy import cpu_has_bfloat16, precision_policy
from src.ensemble import load_member
from src.training import SmoothedSparseCrossentropy, backup_dir, train
from workdir import ROOT, epochs_backed_up


def train_in(split_dir, tmp_path, params, callbacks=()):
    """A member trained with params, seed 1, on split_dir's train and val splits; its files in tmp_path."""
    return train(
        split_dir / "train.npz",
        split_dir / "val.npz",
        tmp_path / "m.keras",
        tmp_path / "live",
        params,
        1,
        tmp_path / "backup",
        callbacks=callbacks,
    )


def test_the_model_learns_and_is_saved(trained_model, prepared_dir):
    model = keras.models.load_model(trained_model)
    val = np.load(prepared_dir / "val.npz")
    accuracy = (model.predict(val["x"], verbose=0).argmax(axis=1) == val["y"]).mean()
    assert accuracy > 0.5  # chance is 0.1; two epochs on 400 digits reach about 0.8


def test_each_epoch_is_logged_for_dvc(trained_model):
    live = trained_model.parent / "dvclive"
    metrics = json.loads((live / "metrics.json").read_text())
    assert metrics["step"] == TINY_TRAIN.epochs - 1
    assert {"accuracy", "loss", "learning_rate"} <= set(metrics["train"])
    assert {"accuracy", "loss"} <= set(metrics["val"])
    curve = (live / "plots" / "metrics" / "val" / "accuracy.tsv").read_text().splitlines()
    assert curve[0] == "step\taccuracy" and len(curve) == 1 + TINY_TRAIN.epochs


def test_learning_rate_is_reduced_on_plateau(plateau_dir, tmp_path):
    # plateau_dir's validation accuracy never improves, so with patience 0 every epoch after the first is a
    # plateau, and each halves the rate for the next.
    params = tiny_train(
        {
            "arch": "mlp",
            "optimizer": "sgd",
            "learning_rate": 0.01,
            "epochs": 3,
            "schedule": "plateau",
            "reduce_lr.monitor": "val_accuracy",
            "reduce_lr.factor": 0.5,
            "reduce_lr.patience": 0,
            "reduce_lr.min_lr": 1e-5,
        }
    )
    train_in(plateau_dir, tmp_path, params)
    assert logged_rates(tmp_path / "live") == [0.01, 0.01, 0.005]


def logged_rates(live_dir):
    """The learning rate logged after each epoch: the one that epoch trained with."""
    rates = (live_dir / "plots" / "metrics" / "train" / "learning_rate.tsv").read_text().split()[3::2]
    return [round(float(rate), 7) for rate in rates]


@pytest.mark.parametrize(
    "schedule, settings, rates",
    [
        # 0.001 × 0.5^epoch, by whole epochs.
        ("exponential", {"decay_rate": 0.5}, [0.0005, 0.00025, 0.000125, 0.0000625]),
        # Up from 0.0001 to 0.001 over the first two epochs, then a cosine down to 0 over the last two.
        ("one_cycle", {"warmup_fraction": 0.5}, [0.00055, 0.001, 0.0005, 0.0]),
    ],
)
def test_learning_rate_schedules(prepared_dir, tmp_path, schedule, settings, rates):
    params = tiny_train({"arch": "mlp", "learning_rate": 0.001, "epochs": 4, "schedule": schedule, **settings})
    train_in(prepared_dir, tmp_path, params)
    assert logged_rates(tmp_path / "live") == pytest.approx(rates, abs=1e-7)


class StepCount(keras.callbacks.Callback):
    steps, logs = 0, {}

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1

    def on_epoch_end(self, epoch, logs=None):
        self.logs = logs


def test_a_final_fit_trains_on_both_splits_and_watches_nothing(prepared_dir, tmp_path):
    params = tiny_train({"arch": "mlp", "epochs": 1, "schedule": "exponential", "final_fit": True})
    counter = StepCount()
    train_in(prepared_dir, tmp_path, params, callbacks=[counter])
    assert counter.steps == 16  # 400 + 100 images in batches of 32; the train split alone makes 13
    assert not any(name.startswith("val_") for name in counter.logs)


def test_a_backup_moved_aside_by_a_kill_is_put_back_not_discarded(prepared_dir, tmp_path):
    inputs = (prepared_dir / "train.npz", prepared_dir / "val.npz")
    params = dataclasses.asdict(TINY_TRAIN)
    path = backup_dir(tmp_path, params, *inputs)
    aside = old_copy(path)
    aside.mkdir()
    (aside / "training_metadata.json").write_text('{"epoch": 2, "batch": -1}')
    assert backup_dir(tmp_path, params, *inputs) == path
    assert epochs_backed_up(tmp_path) == 2


def test_a_backup_of_other_params_is_discarded(prepared_dir, tmp_path):
    inputs = (prepared_dir / "train.npz", prepared_dir / "val.npz")
    kept = backup_dir(tmp_path, dataclasses.asdict(TINY_TRAIN), *inputs)
    kept.mkdir()
    assert backup_dir(tmp_path, dataclasses.asdict(TINY_TRAIN), *inputs) == kept and kept.exists()
    other = backup_dir(tmp_path, dataclasses.asdict(tiny_train({"learning_rate": 0.01})), *inputs)
    assert other != kept and not kept.exists()


class Killed(Exception):
    pass


class KillAtSecondEpoch(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 1:
            raise Killed  # after the first epoch's backup


def test_a_backup_made_in_another_precision_is_not_resumed(prepared_dir, tmp_path, monkeypatch, capsys):
    params = tiny_train({"arch": "mlp", "epochs": 2, "precision": "auto"})
    inputs = (prepared_dir / "train.npz", prepared_dir / "val.npz")
    backup, aside = tmp_path / "backup", tmp_path / "aside"

    def train_on(cpu_bfloat16, **options):
        monkeypatch.setattr(device_policy, "cpu_has_bfloat16", lambda: cpu_bfloat16)
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
from src import config
from src.training import train

prepared, out, overrides = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
params = config.load("params.yaml", overrides).train
val = np.load(f"{prepared}/val.npz")
accuracy = {}
mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
for name, strategy in [("one", tf.distribute.get_strategy()), ("mirrored", mirrored)]:
    model = train(f"{prepared}/train.npz", f"{prepared}/val.npz", f"{out}/{name}.keras", f"{out}/{name}_live", params,
                  1, f"{out}/{name}_backup", strategy)
    accuracy[name] = float((model.predict(val["x"], verbose=0).argmax(axis=1) == val["y"]).mean())
    accuracy[name + "_replicas"] = strategy.num_replicas_in_sync
print(json.dumps(accuracy))
"""

FAST = {"arch": "mlp", "epochs": 4, "batch_size": 16, "lr_scaling.rule": "linear", "lr_scaling.base_batch_size": 16}


def test_mirrored_over_two_cpus_matches_one_device(prepared_dir, tmp_path):
    overrides = {**TINY, **{f"train.{name}": value for name, value in FAST.items()}}
    result = subprocess.run(
        [sys.executable, "-c", MIRRORED, prepared_dir, tmp_path, json.dumps(overrides)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    accuracy = json.loads(result.stdout.splitlines()[-1])
    assert accuracy["one_replicas"] == 1 and accuracy["mirrored_replicas"] == 2
    assert accuracy["one"] > 0.5  # chance is 0.1
    # Twice the batch at twice the rate: the same number of images seen, within 100 digits' noise.
    assert abs(accuracy["mirrored"] - accuracy["one"]) <= 0.1, accuracy


def test_precision_auto_follows_this_cpu_and_a_named_policy_is_used(prepared_dir, tmp_path):
    assert precision_policy("auto") == ("mixed_bfloat16" if cpu_has_bfloat16() else "float32")  # tests run on a CPU
    params = tiny_train({"arch": "mlp", "epochs": 1, "precision": "mixed_bfloat16"})
    model = train_in(prepared_dir, tmp_path, params)
    assert model.layers[1].dtype_policy.name == "mixed_bfloat16" and model.layers[1].compute_dtype == "bfloat16"
    assert model.layers[-1].compute_dtype == "float32"  # the softmax
    assert keras.config.dtype_policy().name == "float32"  # the global policy is left alone
    assert (
        keras.models.load_model(tmp_path / "m.keras").predict(np.zeros((2, 28, 28, 1), np.uint8), verbose=0).dtype
        == np.float32
    )


def test_label_smoothing_is_kerass_own_on_integer_labels_and_its_members_load(prepared_dir, tmp_path):
    labels = np.array([3, 0, 9])
    probabilities = keras.ops.softmax(np.random.default_rng(0).normal(size=(3, 10)).astype("float32"))
    one_hot = keras.ops.one_hot(labels, 10)
    for smoothing in (0.1, 0.3):
        expected = keras.losses.CategoricalCrossentropy(label_smoothing=smoothing)(one_hot, probabilities)
        smoothed = SmoothedSparseCrossentropy(smoothing)(labels[:, None], probabilities)
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(smoothed), keras.ops.convert_to_numpy(expected), rtol=1e-6
        )
    plain = keras.losses.SparseCategoricalCrossentropy()(labels, probabilities)
    np.testing.assert_allclose(SmoothedSparseCrossentropy(0.0)(labels, probabilities), plain, rtol=1e-6)

    params = tiny_train({"arch": "mlp", "epochs": 1, "label_smoothing": 0.1})
    train_in(prepared_dir, tmp_path, params)
    loss = keras.models.load_model(tmp_path / "m.keras").loss
    assert isinstance(loss, SmoothedSparseCrossentropy) and loss.label_smoothing == 0.1
    assert load_member(tmp_path / "m.keras").predict(np.load(prepared_dir / "val.npz")["x"], verbose=0).shape == (
        100,
        10,
    )


def test_weight_averaging_saves_and_validates_the_average_and_resumes_exactly(prepared_dir, tmp_path):
    params = tiny_train({"arch": "mlp", "epochs": 2, "schedule": "exponential", "ema_momentum": 0.9})
    whole = train_in(prepared_dir, tmp_path / "whole", params)
    plain = train_in(prepared_dir, tmp_path / "plain", dataclasses.replace(params, ema_momentum=0.0))
    assert whole.optimizer.use_ema and not plain.optimizer.use_ema
    assert not all(np.array_equal(a, b) for a, b in zip(whole.get_weights(), plain.get_weights(), strict=True))
    # The last epoch's validation scored the averaged weights, which are the ones saved.
    val = np.load(prepared_dir / "val.npz")
    saved = keras.models.load_model(tmp_path / "whole" / "m.keras")
    logged = json.loads((tmp_path / "whole" / "live" / "metrics.json").read_text())["val"]["loss"]
    assert logged == pytest.approx(saved.evaluate(val["x"], val["y"], verbose=0)[0], rel=1e-5)

    resumed_dir = tmp_path / "resumed"
    with pytest.raises(Killed):  # after the first epoch's backup, which holds the average too
        train_in(prepared_dir, resumed_dir, params, callbacks=[KillAtSecondEpoch()])
    resumed = train_in(prepared_dir, resumed_dir, params)
    assert all(np.array_equal(a, b) for a, b in zip(whole.get_weights(), resumed.get_weights(), strict=True))
