import json

import keras
import numpy as np

from conftest import TINY_TRAIN
from src.train import train


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
    train(prepared_dir / "train.npz", prepared_dir / "val.npz", tmp_path / "m.keras", tmp_path / "live", params)
    rates = (tmp_path / "live" / "plots" / "metrics" / "train" / "learning_rate.tsv").read_text().split()[3::2]
    assert [round(float(r), 6) for r in rates] == [0.01, 0.01, 0.005]
