"""Stage `train`: fit the chosen Keras model on the train split, watching the validation split."""

import argparse
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter out of the stage log

import keras
import numpy as np
import yaml
from dvclive import Live
from dvclive.keras import DVCLiveCallback

from .atomic import atomic_path
from .models import build_model


def train(train_npz, val_npz, model_path, live_dir, params):
    """Train per `params` (the `train` section of params.yaml), save the model and log each epoch."""
    keras.utils.set_random_seed(params["seed"])
    train_split, val_split = np.load(train_npz), np.load(val_npz)
    model = build_model(params["arch"])
    model.compile(
        optimizer=keras.optimizers.get(
            {"class_name": params["optimizer"], "config": {"learning_rate": params["learning_rate"]}}
        ),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    # dvc.yaml declares the plots itself, and `dvc exp run` already records the experiment.
    live = Live(live_dir, dvcyaml=None, save_dvc_exp=False)
    model.fit(
        train_split["x"],
        train_split["y"],
        batch_size=params["batch_size"],
        epochs=params["epochs"],
        validation_data=(val_split["x"], val_split["y"]),
        callbacks=[keras.callbacks.ReduceLROnPlateau(**params["reduce_lr"]), DVCLiveCallback(live=live)],
        verbose=2,
    )
    with atomic_path(model_path) as tmp:
        model.save(tmp)
    return model


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("prepared_dir")
    parser.add_argument("model_path")
    parser.add_argument("live_dir", help="dvclive's folder for per-epoch metrics and plots")
    args = parser.parse_args()
    params = yaml.safe_load(Path("params.yaml").read_text())["train"]
    prepared = Path(args.prepared_dir)
    train(prepared / "train.npz", prepared / "val.npz", args.model_path, args.live_dir, params)


if __name__ == "__main__":
    main()
