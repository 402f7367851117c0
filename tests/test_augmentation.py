import keras
import numpy as np
import pytest
from keras import layers

from conftest import tiny_train
from src.architectures import build_model
from src.augmentation import RandomAffine, gather_affine


def augment(rotation=0, zoom=0, shift=0, shear=0):
    """params.yaml's train.augment (config.Augment) with these four set."""
    return tiny_train(
        {"augment.rotation": rotation, "augment.zoom": zoom, "augment.shift": shift, "augment.shear": shear}
    ).augment


def test_augmentation_moves_the_digits_while_training_only():
    model = build_model("mlp", augment(rotation=10, zoom=0.1, shift=0.1, shear=0.2))
    augmentation = model.layers[1:2]
    assert [type(layer) for layer in augmentation] == [RandomAffine]
    assert (augmentation[0].rotation, augmentation[0].zoom, augmentation[0].shift, augmentation[0].shear) == (
        10,
        0.1,
        0.1,
        0.2,
    )
    digits = np.zeros((8, 28, 28, 1), np.float32)
    digits[:, 10:18, 12:16] = 1
    for layer in augmentation:
        assert np.array_equal(layer(digits, training=False), digits)
        moved = np.asarray(layer(digits, training=True))
        assert not np.allclose(moved, digits) and moved.min() == 0  # the border is filled with background
    images = (digits * 255).astype(np.uint8)
    assert np.array_equal(model(images, training=False), model(images, training=False))
    assert not np.allclose(model(images, training=True), model(images, training=False))


def keras_layers(rotation=0, zoom=0, shift=0, shear=0):
    """What RandomAffine stands in for: Keras's own layers, one after another."""
    options = {"fill_mode": "constant", "fill_value": 0.0}
    return [
        layer
        for layer, factor in [
            (layers.RandomRotation(rotation / 360, seed=1, **options), rotation),
            (layers.RandomZoom(zoom, seed=2, **options), zoom),
            (layers.RandomTranslation(shift, shift, seed=3, **options), shift),
            (layers.RandomShear(x_factor=(0, shear), seed=4, **options), shear),
        ]
        if factor
    ]


def spread_and_sharpness(images):
    """The spread of the digits' centres of mass (rows, columns) and of their ink, and their
    mean squared gradient: how the transforms moved them, and how blurred they left them."""
    ink = images[..., 0].sum(axis=(1, 2))
    rows = images[..., 0].sum(axis=2) @ np.arange(28) / ink
    columns = images[..., 0].sum(axis=1) @ np.arange(28) / ink
    gradient = (np.diff(images, axis=1) ** 2).sum(axis=(1, 2, 3)) + (np.diff(images, axis=2) ** 2).sum(axis=(1, 2, 3))
    return np.array([rows.std(), columns.std(), ink.std()]), gradient.mean()


@pytest.mark.parametrize(
    "augment",
    [
        {"rotation": 15},
        {"zoom": 0.15},
        {"shift": 0.1},
        {"shear": 0.2},
        {"rotation": 15, "zoom": 0.15, "shift": 0.1, "shear": 0.2},
    ],
)
def test_one_transform_moves_the_digits_as_keras_layers_do_with_one_interpolation(augment):
    digits = np.zeros((1024, 28, 28, 1), np.float32)
    digits[:, 6:22, 12:16] = 1  # a crisp T
    digits[:, 6:10, 8:20] = 1
    chained = digits
    for layer in keras_layers(**augment):
        chained = np.asarray(layer(chained, training=True))
    spread, sharpness = spread_and_sharpness(np.asarray(RandomAffine(**augment, seed=5)(digits, training=True)))
    chained_spread, chained_sharpness = spread_and_sharpness(chained)
    np.testing.assert_allclose(spread, chained_spread, rtol=0.1, atol=0.05)  # the same random geometry
    if len(augment) == 1:  # one Keras layer: one interpolation either way
        assert sharpness == pytest.approx(chained_sharpness, rel=0.05)
    else:  # four interpolations halve the squared gradient of the one
        assert sharpness > 1.6 * chained_sharpness


def test_no_augmentation_adds_no_layers():
    assert [type(layer) for layer in build_model("mlp", augment()).layers[:2]] == [layers.Rescaling, layers.Flatten]


def test_shear_slants_the_digits_either_way_by_up_to_its_factor():
    (shear,) = build_model("mlp", augment(shear=0.2)).layers[1:2]
    bars = np.zeros((64, 28, 28, 1), np.float32)
    bars[:, 4:24, 12:16] = 1  # upright, 20 rows tall
    sheared = np.asarray(shear(bars, training=True))[..., 0]
    columns = np.arange(28)

    def centre(rows):
        return (sheared[:, rows] * columns).sum(axis=(1, 2)) / sheared[:, rows].sum(axis=(1, 2))

    slant = (centre(slice(4, 8)) - centre(slice(20, 24))) / 16  # columns moved per row, top against bottom
    assert (slant > 0.05).any() and (slant < -0.05).any()
    assert np.abs(slant).max() <= 0.2 + 0.01


def test_a_model_with_every_augmentation_saves_and_loads(tmp_path):
    model = build_model("mlp", augment(rotation=10, zoom=0.1, shift=0.1, shear=0.2))
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    images = np.random.default_rng(0).integers(0, 256, (4, 28, 28, 1), np.uint8)
    np.testing.assert_array_equal(loaded.predict_on_batch(images), model.predict_on_batch(images))


def test_the_gather_sampler_moves_digits_as_keras_affine_transform_does():
    """RandomAffine's sampler under every backend but TensorFlow, checked here against TensorFlow's kernel."""
    digits = np.zeros((16, 28, 28, 1), np.float32)
    digits[:, 6:22, 12:16] = 255
    transform = RandomAffine(rotation=15, zoom=0.15, shift=0.1, shear=0.2, seed=3).random_transforms(16, 28, 28)
    expected = keras.ops.image.affine_transform(digits, transform, fill_mode="constant")
    assert not np.allclose(expected, digits)  # the digits did move
    np.testing.assert_allclose(gather_affine(digits, transform), expected, atol=1e-3)
