import keras
import numpy as np
import pytest

from src import config
from src.ensemble import member_paths, member_probabilities, shifted
from src.stage_process import UserError
from workdir import ROOT


def ensemble(variants, seeds):
    """params.yaml's `ensemble` section (config.Ensemble) with these variants and seeds."""
    return config.load(ROOT / "params.yaml", {"ensemble.variants": variants, "ensemble.seeds": seeds}).ensemble


def test_member_paths_follow_the_variants_and_seeds_and_name_a_missing_member(tmp_path):
    for member in ("base-1", "base-2", "slant-1", "slant-2"):
        (tmp_path / f"{member}.keras").write_bytes(b"")
    assert member_paths(tmp_path, ensemble(["slant", "base"], [2, 1])) == [
        tmp_path / "slant-2.keras",
        tmp_path / "slant-1.keras",
        tmp_path / "base-2.keras",
        tmp_path / "base-1.keras",
    ]
    with pytest.raises(UserError, match=rf"no trained member {tmp_path}/base-3.keras; `dvc repro` trains it"):
        member_paths(tmp_path, ensemble(["base"], [1, 3]))


def test_shifted_moves_the_digit_and_fills_with_background():
    images = np.zeros((1, 4, 4, 1), np.uint8)
    images[0, 1, 2, 0] = 255
    assert np.argwhere(shifted(images, 1, 0)[0, :, :, 0]).tolist() == [[2, 2]]  # down
    assert np.argwhere(shifted(images, 0, -2)[0, :, :, 0]).tolist() == [[1, 0]]  # left
    assert not shifted(images, -2, 0).any()  # moved off the top: nothing wraps round
    assert shifted(images, 1, 0).shape == images.shape


def test_test_time_augmentation_averages_each_member_over_five_views(trained_model, prepared_dir):
    images = np.load(prepared_dir / "test.npz")["x"]
    model = keras.models.load_model(trained_model)
    views = [shifted(images, dy, dx) for dy, dx in ((0, 0), (-1, 0), (1, 0), (0, -1), (0, 1))]
    expected = np.mean([model.predict(view, verbose=0) for view in views], axis=0)
    augmented = member_probabilities([trained_model], images, 32, tta_shift=1)
    assert augmented.shape == (1, len(images), 10)
    np.testing.assert_allclose(augmented[0], expected, atol=1e-6)
    assert not np.allclose(augmented, member_probabilities([trained_model], images, 32))


def test_the_members_predict_in_the_policy_asked_for(trained_model, prepared_dir):
    images = np.load(prepared_dir / "test.npz")["x"]
    saved = trained_model.read_bytes()
    in_float32 = member_probabilities([trained_model], images, 32)
    in_bfloat16 = member_probabilities([trained_model], images, 32, policy="mixed_bfloat16")
    expected = keras.models.load_model(trained_model).predict(images, verbose=0)  # trained in float32
    np.testing.assert_allclose(in_float32[0], expected, atol=1e-6)
    assert not np.array_equal(in_bfloat16, in_float32)
    np.testing.assert_allclose(in_bfloat16, in_float32, atol=0.05)
    assert trained_model.read_bytes() == saved  # the member on disk is left as it trained
