import numpy as np
import pytest

from src.models import build_model


@pytest.mark.parametrize("arch, parameters", [("cnn", 1_659_146), ("mlp", 109_386)])
def test_architectures(arch, parameters):
    model = build_model(arch)
    # The seed CNN: conv 5x5x32 (832) + conv 5x5x64 (51,264) + dense 12,544x128 (1,605,760) + dense 10 (1,290).
    # The MLP: 784x128 (100,480) + 128x64 (8,256) + 64x10 (650).
    assert model.count_params() == parameters
    probabilities = model.predict(np.zeros((3, 28, 28, 1), np.uint8), verbose=0)
    assert probabilities.shape == (3, 10)
    assert np.allclose(probabilities.sum(axis=1), 1, atol=1e-5)


def test_an_unknown_arch_is_refused():
    with pytest.raises(ValueError, match="train.arch is 'resnet'; it must be one of cnn, mlp"):
        build_model("resnet")
