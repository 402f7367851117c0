"""The networks that `train.arch` chooses between. Each takes uint8 images (N, 28, 28, 1) and
gives 10 probabilities.

The float conversion and the augmentation are the model's first layers, so they run on
the device that trains, inside the compiled step; Keras's random layers act only while
training, so a saved model predicts on the images as they are.
"""

import dataclasses

import keras
from keras import layers

from .augmentation import augmentation


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
    5x5 conv in place of pooling, batch norm after every conv."""
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


ARCHITECTURES = {"cnn": seed_cnn, "bn_cnn": bn_cnn, "fast_cnn": fast_cnn, "mlp": mlp}


def build_model(arch, augment=None):
    """arch's layers between the uint8 input and a 10-way softmax, behind the augmentation that
    `augment` (config.Augment) describes."""
    return keras.Sequential(
        [
            keras.Input((28, 28, 1), dtype="uint8"),
            layers.Rescaling(1 / 255),  # (28, 28, 1) in 0..1
            *(augmentation(**dataclasses.asdict(augment)) if augment else []),
            *ARCHITECTURES[arch](),
            # float32 whatever the precision policy: a float16 softmax loses the small probabilities.
            layers.Dense(10, activation="softmax", dtype="float32"),
        ],
        name=arch,
    )
