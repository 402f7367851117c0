"""Random transforms of the training digits, as Keras layers at the model's input."""

import keras
import numpy as np
from keras import layers, ops


def augmentation(rotation=0, zoom=0, shift=0, shear=0):
    """The layers for a random rotation (degrees), zoom, shift (fractions of the size) and a
    horizontal shear (the top moved up to that fraction of the width against the bottom,
    either way: the slant of handwriting); none when all are zero."""
    return [RandomAffine(rotation, zoom, shift, shear)] if rotation or zoom or shift or shear else []


@keras.saving.register_keras_serializable(package="digits")
class RandomAffine(layers.Layer):
    """Keras's RandomRotation, RandomZoom, RandomTranslation and RandomShear, one after
    another, as a single transform: the same random draws, one interpolation.

    Each bilinear interpolation blurs a digit, so nets trained on the chain saw blurrier
    digits than they label, and made more holdout errors (docs/benchmarks.md, "One
    interpolation"). Keras has no layer for the four together;
    ImageDataGenerator, as Deotte trained, also interpolated once. Digits lie on a black
    background, so the uncovered border is filled with black.
    """

    def __init__(self, rotation=0, zoom=0, shift=0, shear=0, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.rotation, self.zoom, self.shift, self.shear, self.seed = rotation, zoom, shift, shear, seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=False):
        if not training:
            return images
        transform = self.random_transforms(ops.shape(images)[0], images.shape[1], images.shape[2])
        return ops.cast(affine_transform(ops.cast(images, "float32"), transform), images.dtype)

    def random_transforms(self, batch, height, width):
        """(batch, 8): for each image, the affine map from each output pixel's (x, y) to the input's, in the form
        ops.image.affine_transform takes."""

        def uniform(bound):
            return keras.random.uniform((batch,), -bound, bound, seed=self.seed_generator)

        angle, zoom, shear = uniform(np.radians(self.rotation)), 1 + uniform(self.zoom), uniform(self.shear)
        shift_x, shift_y = uniform(self.shift) * width, uniform(self.shift) * height
        zeros, ones = ops.zeros((batch,)), ops.ones((batch,))
        cx, cy = (width - 1) / 2, (height - 1) / 2

        def matrix(*rows):  # (N, 3, 3), each output pixel's (x, y, 1) to the input's
            return ops.stack([ops.stack(row, axis=-1) for row in rows], axis=1)

        cos, sin = ops.cos(angle), ops.sin(angle)
        rotate = matrix(
            (cos, -sin, cx - cx * cos + cy * sin), (sin, cos, cy - cx * sin - cy * cos), (zeros, zeros, ones)
        )
        scale = matrix((zoom, zeros, cx * (1 - zoom)), (zeros, zoom, cy * (1 - zoom)), (zeros, zeros, ones))
        move = matrix((ones, zeros, -shift_x), (zeros, ones, -shift_y), (zeros, zeros, ones))
        slant = matrix((ones, shear, zeros), (zeros, ones, zeros), (zeros, zeros, ones))
        # The layers' order: the rotation samples the zoom's output, which samples the shift's, and so on.
        return ops.reshape(rotate @ scale @ move @ slant, (batch, 9))[:, :8]

    def get_config(self):
        return {
            **super().get_config(),
            "rotation": self.rotation,
            "zoom": self.zoom,
            "shift": self.shift,
            "shear": self.shear,
            "seed": self.seed,
        }


def affine_transform(images, transform):
    """images (N, H, W, C) float32 moved by transform (N, 8), bilinearly, black outside the image: Keras's
    ops.image.affine_transform under TensorFlow, whose fused kernel is fastest there; gathers elsewhere. JAX's
    affine_transform goes through jax.scipy.ndimage.map_coordinates, slower than gathers on a CPU and far slower
    on a GPU (docs/benchmarks.md, bench/augmentation_speed.py)."""
    if keras.backend.backend() == "tensorflow":
        return ops.image.affine_transform(images, transform, fill_mode="constant")
    return gather_affine(images, transform)


def gather_affine(images, transform):
    """ops.image.affine_transform(images, transform, fill_mode="constant") in four gathers, one per corner of the
    bilinear interpolation."""
    n, h, w, c = ops.shape(images)[0], images.shape[1], images.shape[2], images.shape[3]
    rows, columns = ops.meshgrid(ops.arange(h, dtype="float32"), ops.arange(w, dtype="float32"), indexing="ij")
    a0, a1, a2, b0, b1, b2 = (ops.reshape(transform[:, i], (-1, 1, 1)) for i in range(6))
    x = a0 * columns + a1 * rows + a2  # (N, H, W): where in the input each output pixel samples
    y = b0 * columns + b1 * rows + b2
    x0, y0 = ops.floor(x), ops.floor(y)
    pixels = ops.reshape(images, (-1, c))  # (N*H*W, C)
    first = ops.reshape(ops.arange(n, dtype="int32") * (h * w), (-1, 1, 1))  # each image's first pixel

    def corner(row, column):  # (N, H, W, C): the input's pixel there, black outside the image
        inside = (column >= 0) & (column <= w - 1) & (row >= 0) & (row <= h - 1)
        index = first + ops.cast(ops.clip(row, 0, h - 1), "int32") * w + ops.cast(ops.clip(column, 0, w - 1), "int32")
        value = ops.reshape(ops.take(pixels, ops.reshape(index, (-1,)), axis=0), (n, h, w, c))
        return value * ops.cast(inside, images.dtype)[..., None]

    dx, dy = (x - x0)[..., None], (y - y0)[..., None]
    top = corner(y0, x0) * (1 - dx) + corner(y0, x0 + 1) * dx
    bottom = corner(y0 + 1, x0) * (1 - dx) + corner(y0 + 1, x0 + 1) * dx
    return top * (1 - dy) + bottom * dy
