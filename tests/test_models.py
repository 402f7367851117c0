import keras
import numpy as np
import pytest
import yaml
from keras import layers

from conftest import TINY_TRAIN
from workdir import ROOT
from src.models import (ElasticDistortion, RandomAffine, build_model, cpu_has_bfloat16, dtype_policy, in_precision, learning_rate,
                        recalibrate_batch_norm, variant_params)


@pytest.mark.parametrize("arch, parameters", [
    ("cnn", 1_659_146), ("bn_cnn", 327_242), ("vgg_cnn", 141_418), ("fast_cnn", 659_274), ("mlp", 109_386),
])
def test_architectures(arch, parameters):
    model = build_model(arch)
    # The seed CNN: conv 5x5x32 (832) + conv 5x5x64 (51,264) + dense 12,544x128 (1,605,760) + dense 10 (1,290).
    # vgg_cnn: convs 3x3 1x32 (320), 32x32 (9,248), 32x64 (18,496), 64x64 (36,928), 64x128 (73,856), their batch
    # norms 4 x (32+32+64+64+128) (1,280), dense 128x10 (1,290): global average pooling leaves no big dense layer.
    # fast_cnn: conv 3x3x48 (480) + conv 3x3x48x96 (41,568) + dense 2,400x256 (614,656) + dense 10 (2,570).
    # The MLP: 784x128 (100,480) + 128x64 (8,256) + 64x10 (650).
    assert model.count_params() == parameters
    probabilities = model.predict(np.zeros((3, 28, 28, 1), np.uint8), verbose=0)
    assert probabilities.shape == (3, 10)
    assert np.allclose(probabilities.sum(axis=1), 1, atol=1e-5)


def test_augmentation_moves_the_digits_while_training_only():
    model = build_model("mlp", {"rotation": 10, "zoom": 0.1, "shift": 0.1, "shear": 0.2, "elastic": 1})
    augmentation = model.layers[1:3]
    assert [type(layer) for layer in augmentation] == [ElasticDistortion, RandomAffine]
    assert (augmentation[1].rotation, augmentation[1].zoom, augmentation[1].shift, augmentation[1].shear) == (
        10, 0.1, 0.1, 0.2)
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
    return [layer for layer, factor in [
        (layers.RandomRotation(rotation / 360, seed=1, **options), rotation),
        (layers.RandomZoom(zoom, seed=2, **options), zoom),
        (layers.RandomTranslation(shift, shift, seed=3, **options), shift),
        (layers.RandomShear(x_factor=(0, shear), seed=4, **options), shear),
    ] if factor]


def spread_and_sharpness(images):
    """The spread of the digits' centres of mass (rows, columns) and of their ink, and their
    mean squared gradient: how the transforms moved them, and how blurred they left them."""
    ink = images[..., 0].sum(axis=(1, 2))
    rows = images[..., 0].sum(axis=2) @ np.arange(28) / ink
    columns = images[..., 0].sum(axis=1) @ np.arange(28) / ink
    gradient = (np.diff(images, axis=1) ** 2).sum(axis=(1, 2, 3)) + (np.diff(images, axis=2) ** 2).sum(axis=(1, 2, 3))
    return np.array([rows.std(), columns.std(), ink.std()]), gradient.mean()


@pytest.mark.parametrize("augment", [
    {"rotation": 15}, {"zoom": 0.15}, {"shift": 0.1}, {"shear": 0.2},
    {"rotation": 15, "zoom": 0.15, "shift": 0.1, "shear": 0.2},
])
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
    assert [type(layer) for layer in build_model("mlp", {"rotation": 0, "zoom": 0, "shift": 0, "shear": 0, "elastic": 0}).layers[:2]] == [
        layers.Rescaling, layers.Flatten]


def test_an_unknown_arch_is_refused():
    with pytest.raises(ValueError, match="train.arch is 'resnet'; it must be one of cnn, bn_cnn, vgg_cnn, fast_cnn, mlp"):
        build_model("resnet")


@pytest.mark.parametrize("rule, factor", [("linear", 4), ("sqrt", 2), ("none", 1)])
def test_the_learning_rate_follows_the_global_batch(rule, factor):
    params = {**TINY_TRAIN, "learning_rate": 0.001, "lr_scaling": {"rule": rule, "base_batch_size": 64}}
    assert learning_rate(params, 256, steps_per_epoch=10) == pytest.approx(0.001 * factor)


def test_an_unknown_scaling_rule_is_refused():
    with pytest.raises(ValueError, match="train.lr_scaling.rule is 'cubic'"):
        learning_rate({**TINY_TRAIN, "lr_scaling": {"rule": "cubic", "base_batch_size": 64}}, 64, 10)


@pytest.mark.parametrize("name, capability, cpu_bfloat16, policy", [
    ("auto", None, False, "float32"), ("auto", None, True, "mixed_bfloat16"), ("auto", (6, 1), True, "float32"),
    ("auto", (7, 5), False, "mixed_float16"), ("auto", (9, 0), False, "mixed_bfloat16"),
    ("float32", (9, 0), True, "float32"), ("mixed_float16", None, False, "mixed_float16"),
])
def test_precision_auto_follows_the_device_and_a_named_policy_wins(name, capability, cpu_bfloat16, policy):
    assert dtype_policy(name, capability, cpu_bfloat16) == policy


ZEN4_FLAGS = "fpu vme avx avx2 fma avx512f avx512bw avx512_bf16 avx512_vnni"


@pytest.mark.parametrize("cpuinfo, expected", [
    (f"processor\t: 0\nflags\t\t: {ZEN4_FLAGS}\n", True),
    ("processor\t: 0\nflags\t\t: fpu avx avx2 fma amx_bf16 amx_tile\n", True),  # Intel Sapphire Rapids
    ("processor\t: 0\nflags\t\t: fpu avx avx2 fma avx512f avx512bw\n", False),  # Skylake-SP: no bfloat16
    ("processor\t: 0\nFeatures\t: fp asimd\n", False),  # no x86 flags line
])
def test_cpu_bfloat16_is_read_from_the_cpu_flags(tmp_path, cpuinfo, expected):
    (tmp_path / "cpuinfo").write_text(cpuinfo)
    assert cpu_has_bfloat16(tmp_path / "cpuinfo") is expected


def test_no_cpuinfo_means_no_bfloat16(tmp_path):
    assert cpu_has_bfloat16(tmp_path / "absent") is False


def test_in_precision_computes_in_the_policy_and_keeps_the_weights_and_a_float32_softmax():
    model = build_model("fast_cnn")
    images = np.random.default_rng(0).integers(0, 256, (64, 28, 28, 1), dtype=np.uint8)
    weights = [w.copy() for w in model.get_weights()]
    in_float32 = np.asarray(model(images))
    assert in_precision(model, "mixed_bfloat16") is model
    in_bfloat16 = np.asarray(model(images))
    assert [layer.compute_dtype for layer in model.layers] == ["bfloat16"] * (len(model.layers) - 1) + ["float32"]
    assert in_bfloat16.dtype == np.float32
    assert all(np.array_equal(before, after) for before, after in zip(weights, model.get_weights()))
    assert not np.array_equal(in_bfloat16, in_float32)  # bfloat16 keeps 8 bits of mantissa ...
    np.testing.assert_allclose(in_bfloat16, in_float32, atol=0.02)  # ... close enough to rank the digits alike


def test_shear_slants_the_digits_either_way_by_up_to_its_factor():
    (shear,) = build_model("mlp", {"rotation": 0, "zoom": 0, "shift": 0, "shear": 0.2}).layers[1:2]
    bars = np.zeros((64, 28, 28, 1), np.float32)
    bars[:, 4:24, 12:16] = 1  # upright, 20 rows tall
    sheared = np.asarray(shear(bars, training=True))[..., 0]
    columns = np.arange(28)

    def centre(rows):
        return (sheared[:, rows] * columns).sum(axis=(1, 2)) / sheared[:, rows].sum(axis=(1, 2))

    slant = (centre(slice(4, 8)) - centre(slice(20, 24))) / 16  # columns moved per row, top against bottom
    assert (slant > 0.05).any() and (slant < -0.05).any()
    assert np.abs(slant).max() <= 0.2 + 0.01


def test_elastic_distortion_moves_each_pixel_its_own_smooth_way_by_its_rms():
    columns = np.broadcast_to(np.arange(28, dtype=np.float32), (64, 28, 28))  # each pixel holds its column
    rows = columns.transpose(0, 2, 1)

    def moved(ramp):
        # Bilinear sampling of a ramp is exact: a warped pixel holds its column (row) plus its x (y)
        # displacement. Two layers of one seed draw the same displacements.
        warped = np.asarray(ElasticDistortion(1.0, seed=7)(ramp[..., None], training=True))[..., 0]
        return (warped - ramp)[:, 8:20, 8:20]  # away from the border, which the digits leave black

    dx, dy = moved(columns), moved(rows)
    assert np.sqrt(np.mean(dx ** 2)) == pytest.approx(1.0, rel=0.2)
    assert np.sqrt(np.mean(dy ** 2)) == pytest.approx(1.0, rel=0.2)
    assert abs(np.corrcoef(dx.ravel(), dy.ravel())[0, 1]) < 0.1  # x and y drawn apart
    assert not any(np.allclose(dx[0], other, atol=0.1) for other in dx[1:])  # each image its own
    assert np.corrcoef(dx[:, :, :-1].ravel(), dx[:, :, 1:].ravel())[0, 1] > 0.9  # neighbours move together
    assert np.array_equal(ElasticDistortion(1.0)(columns[..., None], training=False), columns[..., None])


def test_recalibrated_batch_norm_holds_the_statistics_of_the_digits_as_given():
    model = build_model("bn_cnn", {"rotation": 15, "zoom": 0.15, "shift": 0.1, "shear": 0, "elastic": 1})
    images = np.random.default_rng(0).integers(0, 256, (300, 28, 28, 1), np.uint8)
    first = next(i for i, layer in enumerate(model.layers) if isinstance(layer, layers.BatchNormalization))
    first_norm = model.layers[first]
    assert np.allclose(first_norm.moving_mean, 0)  # as built
    recalibrate_batch_norm(model, images, batch_size=128)  # batches of 128, 128 and 44
    # The first norm's input, with the augmentation and dropout off: the first conv of the digits as given.
    assert isinstance(model.layers[first - 1], layers.Conv2D)
    convolved = np.asarray(keras.Sequential(model.layers[:first])(images, training=False)).reshape(-1, 32)
    np.testing.assert_allclose(first_norm.moving_mean, convolved.mean(axis=0), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(first_norm.moving_variance, convolved.var(axis=0), rtol=0.05)
    assert first_norm.momentum == 0.99  # as it was
    statistics = [np.asarray(weight) for weight in model.non_trainable_weights]
    recalibrate_batch_norm(model, images, batch_size=128)
    assert all(np.allclose(a, b, atol=1e-6) for a, b in zip(statistics, model.non_trainable_weights))  # nothing random


def test_a_model_with_every_augmentation_saves_and_loads(tmp_path):
    model = build_model("mlp", {"rotation": 10, "zoom": 0.1, "shift": 0.1, "shear": 0.2, "elastic": 1})
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    images = np.random.default_rng(0).integers(0, 256, (4, 28, 28, 1), np.uint8)
    np.testing.assert_array_equal(loaded.predict_on_batch(images), model.predict_on_batch(images))


def test_a_variant_changes_only_the_params_it_names():
    params = {"train": TINY_TRAIN, "variants": {"base": {}, "slant": {"augment": {"shear": 0.2}, "epochs": 5}}}
    assert variant_params(params, "base") == TINY_TRAIN
    slant = variant_params(params, "slant")
    assert slant == {**TINY_TRAIN, "augment": {**TINY_TRAIN["augment"], "shear": 0.2}, "epochs": 5}
    assert TINY_TRAIN["augment"]["shear"] == 0  # params.yaml's train section is left as it was


def test_each_variant_in_params_yaml_changes_params_that_train_has():
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    for variant in params["variants"]:
        variant_params(params, variant)  # raises on a key that `train` lacks


@pytest.mark.parametrize("variants, variant, message", [
    ({"base": {}}, "slant", "ensemble.variants names 'slant', which `variants` does not define; it defines base"),
    (None, "base", "ensemble.variants names 'base', which `variants` does not define; it defines none"),
    ({"slant": {"augment": {"sheer": 0.2}}}, "slant", "variants.slant.augment.sheer changes no param"),
    ({"wide": {"filters": 64}}, "wide", "variants.wide.filters changes no param"),
    ({"still": {"augment": 0}}, "still", "variants.still.augment changes no param: `train` has no 'augment' there "
                                          "but a section"),
])
def test_a_variant_that_names_no_param_is_refused(variants, variant, message):
    with pytest.raises(ValueError, match=f"params.yaml: {message}"):
        variant_params({"train": TINY_TRAIN, "variants": variants}, variant)
