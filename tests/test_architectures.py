import numpy as np
import pytest

from src.architectures import ARCHITECTURES, build_model


@pytest.mark.parametrize(
    "arch, parameters",
    [
        ("cnn", 1_659_146),
        ("bn_cnn", 327_242),
        ("fast_cnn", 659_274),
        ("mlp", 109_386),
    ],
)
def test_architectures(arch, parameters):
    model = build_model(arch)
    # The seed CNN: conv 5x5x32 (832) + conv 5x5x64 (51,264) + dense 12,544x128 (1,605,760) + dense 10 (1,290).
    # fast_cnn: conv 3x3x48 (480) + conv 3x3x48x96 (41,568) + dense 2,400x256 (614,656) + dense 10 (2,570).
    # The MLP: 784x128 (100,480) + 128x64 (8,256) + 64x10 (650).
    assert model.count_params() == parameters
    probabilities = model.predict(np.zeros((3, 28, 28, 1), np.uint8), verbose=0)
    assert probabilities.shape == (3, 10)
    assert np.allclose(probabilities.sum(axis=1), 1, atol=1e-5)


def test_every_arch_is_tested():
    assert set(ARCHITECTURES) == {"cnn", "bn_cnn", "fast_cnn", "mlp"}
