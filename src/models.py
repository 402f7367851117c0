"""The models that `train.arch` chooses between, compiled as params.yaml `train` says.

Each model takes uint8 images (N, 28, 28, 1).

The float conversion and the augmentation are the model's first layers, so they run on
the device that trains, inside the compiled step; Keras's random layers act only while
training, so a saved model predicts on the images as they are.
"""

from pathlib import Path

import keras
import numpy as np
from keras import layers, ops


def seed_cnn():
    """The classic Kaggle starter CNN, about 99% on this competition."""
    return [
        layers.Conv2D(32, 5, padding="same", activation="relu"),  # (28, 28, 32)
        layers.Conv2D(64, 5, padding="same", activation="relu"),  # (28, 28, 64)
        layers.MaxPooling2D(2),  # (14, 14, 64)
        layers.Dropout(0.25),
        layers.Flatten(),  # (12544,)
        layers.Dense(128, activation="relu"),
        layers.Dropout(0.5),
    ]


def conv_bn(filters, size, **options):
    """A ReLU conv and the batch norm after it."""
    return [layers.Conv2D(filters, size, activation="relu", **options), layers.BatchNormalization()]


def bn_cnn():
    """Chris Deotte's CNN from "25 Million Images! [0.99757]": stacked 3x3 convs, a strided
    5x5 conv in place of pooling, batch norm after every conv. About 99.6% alone."""
    return [
        *conv_bn(32, 3),  # (26, 26, 32)
        *conv_bn(32, 3),  # (24, 24, 32)
        *conv_bn(32, 5, strides=2, padding="same"),  # (12, 12, 32)
        layers.Dropout(0.4),
        *conv_bn(64, 3),  # (10, 10, 64)
        *conv_bn(64, 3),  # (8, 8, 64)
        *conv_bn(64, 5, strides=2, padding="same"),  # (4, 4, 64)
        layers.Dropout(0.4),
        *conv_bn(128, 4),  # (1, 1, 128)
        layers.Flatten(),  # (128,)
        layers.Dropout(0.4),
    ]


def vgg_cnn():
    """VGG's pattern at MNIST's size: pairs of same-padded 3x3 convs with batch norm, max
    pooling between them, global average pooling at the end. About 99.6% alone, as bn_cnn,
    in half its training on a CPU; it pools where bn_cnn strides, so it errs on other digits."""
    return [
        *conv_bn(32, 3, padding="same"),  # (28, 28, 32)
        *conv_bn(32, 3, padding="same"),  # (28, 28, 32)
        layers.MaxPooling2D(2),  # (14, 14, 32)
        layers.Dropout(0.25),
        *conv_bn(64, 3, padding="same"),  # (14, 14, 64)
        *conv_bn(64, 3, padding="same"),  # (14, 14, 64)
        layers.MaxPooling2D(2),  # (7, 7, 64)
        layers.Dropout(0.25),
        *conv_bn(128, 3),  # (5, 5, 128)
        layers.GlobalAveragePooling2D(),  # (128,)
        layers.Dropout(0.4),
    ]


def fast_cnn():
    """The net for a good model in a minute or two on a laptop CPU: two convs with max
    pooling and a dense layer, about 12 MFLOP per image, a seventh of the seed CNN's. No
    batch norm: on a CPU its extra passes over the activations cost more than it gains
    in a run of a few epochs."""
    return [
        layers.Conv2D(48, 3, activation="relu"),  # (26, 26, 48)
        layers.MaxPooling2D(2),  # (13, 13, 48)
        layers.Conv2D(96, 3, activation="relu"),  # (11, 11, 96)
        layers.MaxPooling2D(2),  # (5, 5, 96)
        layers.Flatten(),  # (2400,)
        layers.Dense(256, activation="relu"),
        layers.Dropout(0.3),
    ]


def mlp():
    """The classic fully connected baseline, about 95-97%."""
    return [
        layers.Flatten(),  # (784,)
        layers.Dense(128, activation="sigmoid"),
        layers.Dense(64, activation="sigmoid"),
    ]


ARCHITECTURES = {"cnn": seed_cnn, "bn_cnn": bn_cnn, "vgg_cnn": vgg_cnn, "fast_cnn": fast_cnn, "mlp": mlp}


def augmentation(rotation=0, zoom=0, shift=0, shear=0, elastic=0):
    """Random rotation (degrees), zoom, shift (fractions of the size), a horizontal shear
    (the top moved up to that fraction of the width against the bottom, either way), the
    slant of handwriting, and an elastic distortion (ElasticDistortion, `elastic` pixels);
    a zero turns one off.
    """
    return [
        *([ElasticDistortion(elastic)] if elastic else []),
        *([RandomAffine(rotation, zoom, shift, shear)] if rotation or zoom or shift or shear else []),
    ]


@keras.saving.register_keras_serializable(package="digits")
class RandomAffine(layers.Layer):
    """Keras's RandomRotation, RandomZoom, RandomTranslation and RandomShear, one after
    another, as a single transform: the same random draws, one interpolation.

    Each bilinear interpolation blurs a digit: one takes a third off its mean squared
    gradient, rotation, zoom and shift chained nearly 60%, so nets trained on the chain saw
    blurrier digits than they label, and made more holdout errors (README: 35.75 a
    champion_long member against 29.25). Keras has no layer for the four together;
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
        batch, height, width = ops.shape(images)[0], images.shape[1], images.shape[2]

        def uniform(bound):
            return keras.random.uniform((batch,), -bound, bound, seed=self.seed_generator)

        angle, zoom, shear = uniform(np.radians(self.rotation)), 1 + uniform(self.zoom), uniform(self.shear)
        shift_x, shift_y = uniform(self.shift) * width, uniform(self.shift) * height
        zeros, ones = ops.zeros((batch,)), ops.ones((batch,))
        cx, cy = (width - 1) / 2, (height - 1) / 2

        def matrix(*rows):  # (N, 3, 3), each output pixel's (x, y, 1) to the input's
            return ops.stack([ops.stack(row, axis=-1) for row in rows], axis=1)

        cos, sin = ops.cos(angle), ops.sin(angle)
        rotate = matrix((cos, -sin, cx - cx * cos + cy * sin), (sin, cos, cy - cx * sin - cy * cos), (zeros, zeros, ones))
        scale = matrix((zoom, zeros, cx * (1 - zoom)), (zeros, zoom, cy * (1 - zoom)), (zeros, zeros, ones))
        move = matrix((ones, zeros, -shift_x), (zeros, ones, -shift_y), (zeros, zeros, ones))
        slant = matrix((ones, shear, zeros), (zeros, ones, zeros), (zeros, zeros, ones))
        # The layers' order: the rotation samples the zoom's output, which samples the shift's, and so on.
        transform = ops.reshape(rotate @ scale @ move @ slant, (batch, 9))[:, :8]
        moved = ops.image.affine_transform(ops.cast(images, "float32"), transform, fill_mode="constant")
        return ops.cast(moved, images.dtype)

    def get_config(self):
        return {**super().get_config(), "rotation": self.rotation, "zoom": self.zoom, "shift": self.shift,
                "shear": self.shear, "seed": self.seed}


@keras.saving.register_keras_serializable(package="digits")
class ElasticDistortion(layers.Layer):
    """Simard et al.'s (2003) elastic distortion, while training only: each pixel of each
    image is moved by its own random displacement, Gaussian noise smoothed over
    `smoothness` pixels, so neighbouring strokes bend together as a pen's wobble does.
    `rms` is the displacements' root mean square in pixels; Simard's and Ciresan's
    settings are about 1.0-1.4.

    Not Keras's RandomElasticTransform: in Keras 3.15 it draws the same noise for the x and
    y displacements, and on a batch of unknown size it warps every image as the first.
    """

    def __init__(self, rms, smoothness=4.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.rms, self.smoothness, self.seed = rms, smoothness, seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=False):
        if not training:
            return images
        batch, height, width = ops.shape(images)[0], images.shape[1], images.shape[2]
        radius = int(3 * self.smoothness)
        taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / self.smoothness) ** 2)
        taps /= taps.sum()
        # Smoothing white noise of unit variance by the separable kernel taps ⊗ taps leaves a
        # standard deviation of sum(taps²); this gain brings it to rms.
        gain = self.rms / np.sum(taps ** 2)
        noise = keras.random.normal((batch, height, width, 2), seed=self.seed_generator)  # (N, 28, 28, dy dx)
        column = np.tile(taps.reshape(-1, 1, 1, 1), (1, 1, 2, 1)).astype("float32")
        field = ops.depthwise_conv(noise, column, padding="same")
        field = ops.depthwise_conv(field, column.reshape(1, -1, 2, 1), padding="same") * gain
        rows, columns = ops.meshgrid(ops.arange(height, dtype="float32"), ops.arange(width, dtype="float32"),
                                     indexing="ij")

        def warp(image_and_field):
            image, (dy, dx) = image_and_field[0], ops.unstack(image_and_field[1], axis=-1)
            return ops.image.map_coordinates(image, [rows + dy, columns + dx], order=1, fill_mode="constant")

        # Per image, as map_coordinates needs every dimension's size, and the batch's is unknown.
        warped = ops.vectorized_map(warp, (ops.cast(images[..., 0], "float32"), field))  # (N, 28, 28)
        return ops.cast(warped[..., None], images.dtype)

    def get_config(self):
        return {**super().get_config(), "rms": self.rms, "smoothness": self.smoothness, "seed": self.seed}


def build_model(arch, augment=None):
    """arch's layers between the uint8 input and a 10-way softmax, behind `augment`'s layers."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"train.arch is {arch!r}; it must be one of {', '.join(ARCHITECTURES)}")
    return keras.Sequential(
        [
            keras.Input((28, 28, 1), dtype="uint8"),
            layers.Rescaling(1 / 255),  # (28, 28, 1) in 0..1
            *augmentation(**(augment or {})),
            *ARCHITECTURES[arch](),
            # float32 whatever the precision policy: a float16 softmax loses the small probabilities.
            layers.Dense(10, activation="softmax", dtype="float32"),
        ],
        name=arch,
    )


def recalibrate_batch_norm(model, images, batch_size=1024):
    """Set each BatchNormalization layer's moving mean and variance to those of `images` as
    given, through the net without augmentation or dropout, as PyTorch's
    `torch.optim.swa_utils.update_bn` does for averaged weights; returns the model.

    Training leaves moving averages over batches that were rotated, zoomed and bent, taken
    while the weights still moved; the digits to label are neither. One pass: each batch
    flows through the net with every batch norm normalizing by the batch's own statistics,
    and each moving statistic becomes their mean over the batches, weighted by batch size.
    """
    norms = [layer for layer in model.layers if isinstance(layer, layers.BatchNormalization)]
    momenta = [norm.momentum for norm in norms]
    try:
        for start in range(0, len(images), batch_size):
            batch = images[start:start + batch_size]
            for norm in norms:
                norm.momentum = start / (start + len(batch))  # the share of the images already seen
            for layer in model.layers:
                batch = layer(batch, training=isinstance(layer, layers.BatchNormalization))
    finally:
        for norm, momentum in zip(norms, momenta):
            norm.momentum = momentum
    return model


def variant_params(params, variant):
    """params.yaml's `train` section as params.yaml `variants` changes it for `variant`."""
    variants = params.get("variants") or {}
    if variant not in variants:
        raise ValueError(f"params.yaml: ensemble.variants names {variant!r}, which `variants` does not define; "
                         f"it defines {', '.join(variants) or 'none'}")
    return changed(params["train"], variants[variant], f"variants.{variant}")


def changed(section, changes, where):
    """section with changes, a nest of the same keys, put in; `where` names changes in an error."""
    result = dict(section)
    for key, value in (changes or {}).items():
        if key not in section or isinstance(section[key], dict) != isinstance(value, dict):
            raise ValueError(f"params.yaml: {where}.{key} changes no param: `train` has no {key!r} there"
                             + (" but a section" if key in section else ""))
        result[key] = changed(section[key], value, f"{where}.{key}") if isinstance(value, dict) else value
    return result


def compiled_model(params, batch_size, steps_per_epoch, policy):
    """The model that params (the `train` section of params.yaml) describe, built under the
    dtype policy and compiled with its optimizer and learning rate for a global batch of
    batch_size."""
    model = build_in_precision(params["arch"], params["augment"], policy)
    model.compile(
        optimizer=keras.optimizers.get({
            "class_name": params["optimizer"],
            "config": {"learning_rate": learning_rate(params, batch_size, steps_per_epoch)},
        }),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        jit_compile=params["jit_compile"],  # auto: Keras's choice, which leaves XLA off on a CPU
    )
    return model


def dtype_policy(name, gpu_compute_capability, cpu_bfloat16=False):
    """The Keras dtype policy that a precision param (train.precision, ensemble.precision)
    names; auto picks by device.

    auto: on a GPU, mixed_bfloat16 from compute capability 8 (bfloat16 tensor cores) and
    mixed_float16 on 7.x; on a CPU, mixed_bfloat16 where it has bfloat16 arithmetic
    (cpu_bfloat16); else float32, as 16-bit math that the hardware lacks runs slower.
    gpu_compute_capability: (major, minor), or None without a GPU.
    """
    if name != "auto":
        return name
    if gpu_compute_capability:
        major = gpu_compute_capability[0]
        return "mixed_bfloat16" if major >= 8 else "mixed_float16" if major >= 7 else "float32"
    return "mixed_bfloat16" if cpu_bfloat16 else "float32"


def precision_policy(name):
    """dtype_policy for `name` on this machine: its first GPU, as the Keras backend sees it, else its CPU."""
    if name != "auto":
        return name
    capability = None
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            capability = tf.config.experimental.get_device_details(gpus[0]).get("compute_capability")
    elif keras.backend.backend() == "jax":
        import jax

        device = jax.devices()[0]
        if device.platform == "gpu":
            capability = tuple(map(int, device.compute_capability.split(".")))
    return dtype_policy(name, capability, capability is None and cpu_has_bfloat16())


# x86 instruction sets with bfloat16 dot products, which oneDNN runs TensorFlow's bfloat16
# convolutions and matmuls on: AVX512_BF16 (AMD Zen 4 on, Intel Cooper Lake on) and AMX.
BFLOAT16_CPU_FLAGS = {"avx512_bf16", "amx_bf16"}


def cpu_has_bfloat16(cpuinfo="/proc/cpuinfo"):
    """Whether the CPU has bfloat16 arithmetic, by the flags Linux lists; False where it lists none."""
    try:
        lines = Path(cpuinfo).read_text().splitlines()
    except OSError:
        return False
    flags = next((line.split(":", 1)[1].split() for line in lines if line.startswith("flags")), [])
    return not BFLOAT16_CPU_FLAGS.isdisjoint(flags)


def in_precision(model, policy):
    """A built model, computing in the dtype policy from its next call on; its weights stay
    as they are, and its softmax layer in float32 (see build_model)."""
    for layer in model.layers[:-1]:
        layer.dtype_policy = policy
    return model


def build_in_precision(arch, augment, policy):
    """build_model under the dtype policy, leaving the global policy as it was."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        return build_model(arch, augment)
    finally:
        keras.config.set_dtype_policy(previous)


def learning_rate(params, batch_size, steps_per_epoch):
    """The optimizer's learning rate for a global batch of batch_size: a number that
    ReduceLROnPlateau lowers, or a schedule by step.

    The rate is learning_rate scaled from lr_scaling.base_batch_size to batch_size by
    lr_scaling.rule. exponential: that rate × decay_rate^epoch. one_cycle: a linear warm-up
    from a tenth of that rate to it over warmup_fraction of the steps, then a cosine down
    to zero.
    """
    peak = params["learning_rate"] * batch_scale(params["lr_scaling"], batch_size)
    schedule = params["schedule"]
    if schedule == "plateau":
        return peak
    if schedule == "exponential":
        return keras.optimizers.schedules.ExponentialDecay(peak, steps_per_epoch, params["decay_rate"], staircase=True)
    if schedule == "one_cycle":
        steps = steps_per_epoch * params["epochs"]
        warmup_steps = round(steps * params["warmup_fraction"])
        return keras.optimizers.schedules.CosineDecay(peak / 10, steps - warmup_steps, warmup_target=peak,
                                                      warmup_steps=warmup_steps)
    raise ValueError(f"train.schedule is {schedule!r}; it must be plateau, exponential or one_cycle")


def batch_scale(lr_scaling, batch_size):
    """The factor on the learning rate for a global batch of batch_size.

    linear keeps the update per image the same, as for SGD (Goyal et al., 2017); sqrt keeps
    the gradient noise the same, which suits Adam at large batches (Malladi et al., 2022).
    """
    ratio = batch_size / lr_scaling["base_batch_size"]
    rules = {"linear": ratio, "sqrt": ratio ** 0.5, "none": 1.0}
    if lr_scaling["rule"] not in rules:
        raise ValueError(f"train.lr_scaling.rule is {lr_scaling['rule']!r}; it must be linear, sqrt or none")
    return rules[lr_scaling["rule"]]
