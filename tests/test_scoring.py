import json

import keras
import numpy as np
import pandas as pd
import pytest

from src.scoring import accuracy_interval, evaluate, plot_misclassified, score


def test_score():
    labels = np.array([0, 1, 2, 3])
    probabilities = np.full((4, 10), 0.05)
    probabilities[[0, 1, 2, 3], [0, 1, 2, 9]] = 0.55  # the last one is wrong
    result = score(labels, probabilities)
    assert result == {
        "accuracy": 0.75,
        "accuracy_95": accuracy_interval(1, 4),
        "loss": pytest.approx(-(3 * np.log(0.55) + np.log(0.05)) / 4),
        "errors": 1,
        "images": 4,
    }


@pytest.mark.parametrize(
    "errors, images, low, high",
    [
        (1, 4, 0.194120, 0.975 ** (1 / 4)),  # 3 right in 4: high solves high ** 4 = 0.975; low as R's binom.test gives
        (0, 4, 0.025 ** (1 / 4), 1.0),  # none wrong: low solves low ** 4 = 0.025
        (4, 4, 0.0, 1 - 0.025 ** (1 / 4)),
    ],
)
def test_accuracy_interval(errors, images, low, high):
    assert accuracy_interval(errors, images) == {
        "low": pytest.approx(low, abs=1e-6),
        "high": pytest.approx(high, abs=1e-6),
    }


def test_accuracy_interval_narrows_with_the_split():
    """24 errors in the 8,400 holdout digits cannot tell 99.71% from 99.75%; the same rate in ten times the
    digits can."""
    holdout, ten_times = accuracy_interval(24, 8400), accuracy_interval(240, 84000)
    assert holdout["low"] < 0.9975 < holdout["high"]
    assert holdout["low"] < ten_times["low"] < 1 - 24 / 8400 < ten_times["high"] < 0.9975 < holdout["high"]


def test_evaluate_writes_metrics_report_and_plots(trained_model, prepared_dir, tmp_path):
    metrics = evaluate(
        [trained_model],
        prepared_dir / "val.npz",
        prepared_dir / "sealed.npz",
        prepared_dir / "test.npz",
        tmp_path / "metrics.json",
        tmp_path / "scores.json",
        tmp_path / "classification_report.txt",
        tmp_path / "plots",
        max_misclassified=20,
    )
    assert json.loads((tmp_path / "scores.json").read_text()) == metrics
    # The sealed holdout is scored, but stays out of what experiments are compared on.
    assert json.loads((tmp_path / "metrics.json").read_text()) == {
        name: {key: metrics[name][key] for key in ("accuracy", "errors")} for name in ("val", "test")
    }
    assert set(metrics) == {"val", "test", "sealed"}  # the test split has labels here, as in the offline sample
    assert metrics["sealed"]["images"] == 50 and 0.5 < metrics["sealed"]["accuracy"] <= 1
    assert metrics["val"]["images"] == 100 and 0.5 < metrics["val"]["accuracy"] <= 1
    assert metrics["val"]["accuracy_95"] == accuracy_interval(metrics["val"]["errors"], 100)
    report = (tmp_path / "classification_report.txt").read_text()
    assert report.startswith("val\n") and "\ntest\n" in report and "sealed" not in report and "precision" in report
    confusion = pd.read_csv(tmp_path / "plots" / "confusion" / "val.csv")
    assert list(confusion.columns) == ["actual", "predicted"] and len(confusion) == 100
    assert (confusion.actual != confusion.predicted).sum() == metrics["val"]["errors"]
    for name in ("val", "test"):
        assert (tmp_path / "plots" / "misclassified" / f"{name}.png").read_bytes().startswith(b"\x89PNG")
    assert sorted(p.name for p in (tmp_path / "plots" / "misclassified").iterdir()) == ["test.png", "val.png"]


def test_without_test_labels_or_a_sealed_split_only_validation_is_scored(trained_model, prepared_dir, tmp_path):
    test = np.load(prepared_dir / "test.npz")
    np.savez(tmp_path / "test.npz", x=test["x"])
    np.savez(tmp_path / "sealed.npz", x=test["x"][:0], y=test["y"][:0])  # as prepare.sealed_fraction 0 writes it
    metrics = evaluate(
        [trained_model],
        prepared_dir / "val.npz",
        tmp_path / "sealed.npz",
        tmp_path / "test.npz",
        tmp_path / "metrics.json",
        tmp_path / "scores.json",
        tmp_path / "report.txt",
        tmp_path / "plots",
        max_misclassified=20,
    )
    assert set(metrics) == {"val"}
    assert sorted(p.name for p in (tmp_path / "plots" / "confusion").iterdir()) == ["val.csv"]


@pytest.mark.parametrize("wrong", [0, 3])
def test_misclassified_grid(tmp_path, wrong):
    images = np.zeros((5, 28, 28, 1), np.uint8)
    labels = np.arange(5)
    probabilities = np.eye(10)[np.r_[(labels[:wrong] + 1) % 10, labels[wrong:]]]
    plot_misclassified(images, labels, probabilities, tmp_path / "grid.png", limit=50)
    assert (tmp_path / "grid.png").read_bytes().startswith(b"\x89PNG")


def test_an_ensemble_is_scored_with_each_member_alone(trained_model, second_member, prepared_dir, tmp_path, caplog):
    metrics = evaluate(
        [trained_model, second_member],
        prepared_dir / "val.npz",
        prepared_dir / "sealed.npz",
        prepared_dir / "test.npz",
        tmp_path / "metrics.json",
        tmp_path / "scores.json",
        tmp_path / "report.txt",
        tmp_path / "plots",
        max_misclassified=20,
    )
    # Each member is loaded, and its predict step traced, once for all three splits: a member loaded per split
    # traced on every call, and TensorFlow logged a warning about frequent retracing.
    assert not [message for message in caplog.messages if "retracing" in message]
    val = np.load(prepared_dir / "val.npz")
    alone = {}
    for path in (trained_model, second_member):
        predicted = keras.models.load_model(path).predict(val["x"], verbose=0).argmax(axis=1)
        alone[path.stem] = float((predicted == val["y"]).mean())
    assert metrics["val"]["members"] == alone
    assert set(metrics["sealed"]["members"]) == set(alone)
    assert metrics["val"]["errors"] == len(val["y"]) - round(metrics["val"]["accuracy"] * len(val["y"]))
