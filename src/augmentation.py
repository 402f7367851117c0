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
        moved = ops.image.affine_transform(ops.cast(images, "float32"), transform, fill_mode="constant")
        return ops.cast(moved, images.dtype)

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
