"""Augmentation's two samplers on this machine's device, under the current Keras backend: images/s of Keras's
ops.image.affine_transform and of src.augmentation's gather sampler, which RandomAffine uses under every backend but
TensorFlow. JAX's affine_transform goes through jax.scipy.ndimage.map_coordinates, once measured on an H100 at
8.8 s per 6,400 digits. Both sample RandomAffine's own transforms for the champion recipe's augmentation; the
gap between their outputs is printed too.

    python bench/augmentation_speed.py                      # TensorFlow
    KERAS_BACKEND=jax python bench/augmentation_speed.py    # JAX
"""

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def compiled(function):
    """function compiled as a training step would run it: jax.jit, or a tf.function."""
    import keras

    if keras.backend.backend() == "jax":
        import jax

        return jax.jit(function)
    import tensorflow as tf

    return tf.function(function)


def images_per_second(function, images, transform, calls):
    """The best of three timings of `calls` calls, each compiled beforehand."""
    from keras import ops

    ops.convert_to_numpy(function(images, transform))
    best = 0.0
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(calls):
            result = function(images, transform)
        ops.convert_to_numpy(result)  # waits for the device
        best = max(best, calls * len(images) / (time.perf_counter() - start))
    return best


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=64, help="images a call: the champion recipe's batch")
    parser.add_argument("--calls", type=int, default=100, help="calls a timing")
    args = parser.parse_args()

    import keras
    import numpy as np
    from keras import ops

    from src.augmentation import RandomAffine, gather_affine
    from src.device_policy import device_name

    images = np.random.default_rng(0).uniform(0, 255, (args.batch, 28, 28, 1)).astype("float32")
    layer = RandomAffine(rotation=10, zoom=0.1, shift=0.1, seed=0)  # recipes/champion.yaml's augmentation
    transform = ops.convert_to_numpy(layer.random_transforms(args.batch, 28, 28))
    keras_op = compiled(lambda images, transform: ops.image.affine_transform(images, transform, fill_mode="constant"))
    gather = compiled(gather_affine)
    gap = np.abs(ops.convert_to_numpy(keras_op(images, transform)) - ops.convert_to_numpy(gather(images, transform)))
    print(f"{device_name()}; batch {args.batch}; the samplers differ by at most {gap.max():.1e} of 255")
    for name, function in (("ops.image.affine_transform", keras_op), ("gather sampler", gather)):
        speed = images_per_second(function, images, transform, args.calls)
        print(f"{keras.backend.backend()}, {name}: {speed:,.0f} images/s")


if __name__ == "__main__":
    main()
