"""bench/augmentation_speed.py: the gather sampler it weighs moves digits as Keras's affine_transform does."""

import importlib.util
import subprocess
import sys

import numpy as np
from keras import ops

from src.augmentation import RandomAffine
from workdir import ROOT

spec = importlib.util.spec_from_file_location("augmentation_speed", ROOT / "bench" / "augmentation_speed.py")
augmentation_speed = importlib.util.module_from_spec(spec)
spec.loader.exec_module(augmentation_speed)


def test_the_gather_sampler_moves_digits_as_keras_affine_transform_does():
    digits = np.zeros((16, 28, 28, 1), np.float32)
    digits[:, 6:22, 12:16] = 255
    transform = RandomAffine(rotation=15, zoom=0.15, shift=0.1, shear=0.2, seed=3).random_transforms(16, 28, 28)
    expected = ops.convert_to_numpy(ops.image.affine_transform(digits, transform, fill_mode="constant"))
    moved = ops.convert_to_numpy(augmentation_speed.gather_affine(digits, transform))
    assert not np.allclose(expected, digits)  # the digits did move
    np.testing.assert_allclose(moved, expected, atol=1e-3)


def test_it_prints_each_sampler_s_speed_on_this_device():
    run = subprocess.run(
        [sys.executable, ROOT / "bench" / "augmentation_speed.py", "--calls", "2"], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert "cores, Keras on tensorflow; batch 64; the samplers differ by at most" in lines[0]
    assert [line.split(":")[0] for line in lines[1:]] == [
        "tensorflow, ops.image.affine_transform",
        "tensorflow, gather sampler",
    ]
    assert all(line.endswith(" images/s") for line in lines[1:])
