import pytest

from conftest import tiny_train
from src.learning_rate import learning_rate


@pytest.mark.parametrize("rule, factor", [("linear", 4), ("sqrt", 2), ("none", 1)])
def test_the_learning_rate_follows_the_global_batch(rule, factor):
    params = tiny_train(
        {"schedule": "plateau", "learning_rate": 0.001, "lr_scaling.rule": rule, "lr_scaling.base_batch_size": 64}
    )
    assert learning_rate(params, 256, steps_per_epoch=10) == pytest.approx(0.001 * factor)
