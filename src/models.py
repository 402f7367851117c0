"""The models that `train.arch` chooses between. Each takes uint8 images (N, 28, 28, 1)."""

import keras
from keras import layers


def seed_cnn():
    """The classic Kaggle starter CNN, about 99% on this competition."""
    return keras.Sequential(
        [
            keras.Input((28, 28, 1), dtype="uint8"),
            layers.Rescaling(1 / 255),  # (28, 28, 1) in 0..1, converted where the model runs
            layers.Conv2D(32, 5, padding="same", activation="relu"),  # (28, 28, 32)
            layers.Conv2D(64, 5, padding="same", activation="relu"),  # (28, 28, 64)
            layers.MaxPooling2D(2),  # (14, 14, 64)
            layers.Dropout(0.25),
            layers.Flatten(),  # (12544,)
            layers.Dense(128, activation="relu"),
            layers.Dropout(0.5),
            layers.Dense(10, activation="softmax"),  # class probabilities
        ],
        name="cnn",
    )


def mlp():
    """The classic fully connected baseline, about 95-97%."""
    return keras.Sequential(
        [
            keras.Input((28, 28, 1), dtype="uint8"),
            layers.Rescaling(1 / 255),
            layers.Flatten(),  # (784,)
            layers.Dense(128, activation="sigmoid"),
            layers.Dense(64, activation="sigmoid"),
            layers.Dense(10, activation="softmax"),
        ],
        name="mlp",
    )


ARCHITECTURES = {"cnn": seed_cnn, "mlp": mlp}


def build_model(arch):
    if arch not in ARCHITECTURES:
        raise ValueError(f"train.arch is {arch!r}; it must be one of {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[arch]()
