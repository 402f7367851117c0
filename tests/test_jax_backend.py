"""The pipeline under Keras's JAX backend (KERAS_BACKEND=jax), in an environment with JAX and without
TensorFlow (requirements-jax.txt), as on a machine that has only JAX. CI runs this module there, apart from
the rest, as the README's test command does."""

import importlib.util
import json
import signal
import subprocess
import sys
import time

import pytest
import test_training
import yaml
from test_pipeline import all_stages
from test_train import stage_workdir
from test_training import FAST

from conftest import TINY
from workdir import ROOT, environment_without_kaggle, epochs_backed_up, project_copy, stages_run

if importlib.util.find_spec("jax") is None or importlib.util.find_spec("tensorflow") is not None:
    pytest.skip(
        "needs JAX without TensorFlow: python3 -m venv .venv-jax && . .venv-jax/bin/activate && "
        "pip install -r requirements-jax.txt",
        allow_module_level=True,
    )


@pytest.fixture(scope="session")
def compilation_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("jax_cache")


@pytest.fixture
def jax_env(tmp_path, compilation_cache):
    """The environment of a process under KERAS_BACKEND=jax with no Kaggle credentials. JAX's persistent
    compilation cache, every entry kept, spares each process the compiles an earlier one made."""
    env = environment_without_kaggle(tmp_path / "home")
    return {
        **env,
        "KERAS_BACKEND": "jax",
        "PYTHONPATH": str(ROOT),
        "JAX_COMPILATION_CACHE_DIR": str(compilation_cache),
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
        "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0",
    }


def run_train(workdir, prepared_dir, name, env):
    command = ["-m", "src.train", "--variant", "base", "--seed", "1", prepared_dir, f"{name}.keras"]
    return subprocess.Popen(
        [sys.executable, *command, f"{name}_live", f"{name}_backup"],
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def same_weights(first, second, env):
    """Whether two saved members' weights are equal bit for bit, read back under JAX."""
    script = (
        "import sys, keras, numpy as np, src.augmentation\n"
        "a, b = (keras.models.load_model(path).get_weights() for path in sys.argv[1:])\n"
        "print(all(np.array_equal(x, y) for x, y in zip(a, b, strict=True)))"
    )
    result = subprocess.run([sys.executable, "-c", script, first, second], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout == "True\n"


def test_jax_is_really_the_backend_and_tensorflow_is_not_installed(jax_env):
    script = "import keras; print(keras.backend.backend()); import tensorflow"
    result = subprocess.run([sys.executable, "-c", script], env=jax_env, capture_output=True, text=True)
    assert result.stdout == "jax\n" and "No module named 'tensorflow'" in result.stderr


def test_jax_augmentation_samples_as_keras_affine_transform_with_gathers():
    """Under JAX, RandomAffine samples with gathers rather than through map_coordinates, and moves the digits as
    Keras's affine_transform does, within 1e-3 of 255."""
    import keras
    import numpy as np

    from src import augmentation

    digits = np.zeros((16, 28, 28, 1), np.float32)
    digits[:, 6:22, 12:16] = 255
    transform = augmentation.RandomAffine(15, 0.15, 0.1, 0.2, seed=3).random_transforms(16, 28, 28)
    expected = keras.ops.image.affine_transform(digits, transform, fill_mode="constant")
    moved = augmentation.affine_transform(digits, transform)
    assert keras.backend.backend() == "jax" and not np.allclose(expected, digits)
    np.testing.assert_allclose(moved, expected, atol=1e-3)
    assert np.array_equal(moved, augmentation.gather_affine(digits, transform))


def test_jax_batches_are_gathered_on_the_device_from_arrays_copied_there_once():
    """Under JAX the training images live on the default device (a GPU's memory, where there is one) and
    each batch is gathered there, holding the rows, in the order, that NumPy indexing gives."""
    import jax
    import numpy as np

    from src.training import ShuffledBatches

    rng = np.random.default_rng(0)
    images, labels = rng.integers(0, 256, (1000, 28, 28, 1), np.uint8), rng.integers(0, 10, 1000, np.uint8)
    batches = ShuffledBatches(images, labels, 64, seed=7)
    assert isinstance(batches.images, jax.Array) and batches.images.devices() == {jax.devices()[0]}
    batches.set_epoch(3)
    order = np.random.default_rng([7, 3]).permutation(1000)
    for index in (0, 15):  # a whole batch, and the last, of 40
        batch_images, batch_labels = batches[index]
        rows = order[index * 64 : (index + 1) * 64]
        assert isinstance(batch_images, jax.Array) and batch_images.devices() == {jax.devices()[0]}
        assert batch_images.dtype == np.uint8 and np.array_equal(batch_images, images[rows])
        assert np.array_equal(batch_labels, labels[rows])
    assert len(batches) == 16 and len(batches[15][1]) == 40


def test_jax_precision_auto_keeps_float32_on_a_cpu_with_bfloat16_math(jax_env):
    script = (
        "from src import device_policy\n"
        "device_policy.cpu_has_bfloat16 = lambda: True  # as on a CPU with AVX512_BF16 or AMX\n"
        "print(device_policy.precision_policy('auto'))"
    )
    result = subprocess.run([sys.executable, "-c", script], env=jax_env, capture_output=True, text=True)
    assert result.stdout == "float32\n", result.stderr


def test_jax_training_is_seeded_and_a_killed_run_resumes_exactly(plateau_dir, tmp_path, jax_env):
    """Under JAX on a CPU, a run killed after its second epoch and resumed in a new process ends with the
    weights of an uninterrupted one from the same seed, bit for bit: the tolerance is zero."""
    workdir = stage_workdir(
        tmp_path,
        {"epochs": 4, "schedule": "plateau", "reduce_lr.patience": 2, "augment.rotation": 10, "augment.shift": 0.1},
    )
    whole = run_train(workdir, plateau_dir, "whole", jax_env)
    assert whole.wait() == 0, whole.stdout.read()

    killed = run_train(workdir, plateau_dir, "resumed", jax_env)
    while epochs_backed_up(workdir / "resumed_backup") < 2:
        assert killed.poll() is None, killed.stdout.read()
        time.sleep(0.02)
    killed.send_signal(signal.SIGKILL)
    assert killed.wait() == -signal.SIGKILL
    resumed = run_train(workdir, plateau_dir, "resumed", jax_env)
    output = resumed.communicate()[0]
    assert resumed.returncode == 0, output
    assert "train: resuming after epoch 2" in output and "Epoch 3/4" in output and "Epoch 2/4" not in output

    assert same_weights(workdir / "whole.keras", workdir / "resumed.keras", jax_env)
    curve = "plots/metrics/train/learning_rate.tsv"  # the plateau counters survived the kill too
    assert (workdir / "resumed_live" / curve).read_text() == (workdir / "whole_live" / curve).read_text()


def test_jax_data_parallel_over_two_cpus_trains_as_one_device(prepared_dir, tmp_path, jax_env):
    """keras.distribution's DataParallel over two CPU devices: twice the global batch at twice the rate, so
    the accuracy is within noise of one device's."""
    script = """
import json, sys
import keras, numpy as np
from src import config, devices
from src.training import train

prepared, overrides = sys.argv[1], json.loads(sys.argv[2])
params = config.load("params.yaml", overrides).train
model = train(f"{prepared}/train.npz", f"{prepared}/val.npz", "m.keras", "live", params, 1, "backup")
val = np.load(f"{prepared}/val.npz")
accuracy = float((model.predict(val["x"], verbose=0).argmax(axis=1) == val["y"]).mean())
print(json.dumps({"replicas": len(keras.distribution.list_devices()), "accuracy": accuracy}))
"""
    overrides = {**TINY, **{f"train.{name}": value for name, value in FAST.items()}}  # as the TensorFlow twin
    results = {}
    for count in (1, 2):
        (tmp_path / str(count)).mkdir()
        env = {**jax_env, "XLA_FLAGS": f"--xla_force_host_platform_device_count={count}"}
        run = subprocess.run(
            [sys.executable, "-c", script, prepared_dir, json.dumps(overrides)],
            cwd=stage_workdir(tmp_path / str(count), {}),
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert run.returncode == 0, run.stderr
        results[count] = json.loads(run.stdout.splitlines()[-1])
    assert [results[count]["replicas"] for count in (1, 2)] == [1, 2]
    assert results[1]["accuracy"] > 0.5, results  # chance is 0.1, as in the TensorFlow twin
    assert abs(results[2]["accuracy"] - results[1]["accuracy"]) <= 0.1, results


def test_jax_dvc_repro_runs_every_stage_offline_and_export_says_it_needs_tensorflow(tmp_path, jax_env):
    # The MLP, as the TensorFlow first run: the CNN's training under JAX is the resume test's.
    project = project_copy(tmp_path / "project", **{"train.epochs": 1, "train.arch": "mlp"})
    run = subprocess.run(["dvc", "repro", "--keep-going"], cwd=project, env=jax_env, capture_output=True, text=True)
    output = run.stdout + run.stderr
    assert run.returncode != 0 and stages_run(output) == all_stages(project), output
    assert "source: using 'sample'" in output
    scores = yaml.safe_load((project / "eval/scores.json").read_text())
    assert scores["test"]["accuracy"] > 0.5  # one epoch on 2,800 digits: far above chance (0.1)
    assert (project / "submissions/submission.csv").read_text().count("\n") == 1001
    assert (project / "eval/plots_page.html").exists()
    export_lines = [line for line in output.splitlines() if line.startswith("export:")]
    assert export_lines == [
        "export: error: the SavedModel and ONNX files are TensorFlow's to make, and it is not installed here; "
        "pip install -r requirements.txt"
    ], output
    assert "Traceback" not in output and not (project / "models/ensemble.onnx").exists()


def test_jax_weight_averaging_saves_and_validates_the_average_and_resumes_exactly(prepared_dir, tmp_path):
    test_training.test_weight_averaging_saves_and_validates_the_average_and_resumes_exactly(prepared_dir, tmp_path)
