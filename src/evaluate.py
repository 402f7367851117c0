"""Stage `evaluate`: accuracy, loss, per-class report, confusion matrix and the misclassified digits.

Scored on the validation split, and on the test split where it has labels (the offline sample).
"""

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter out of the stage log

import matplotlib
import numpy as np
import pandas as pd
import yaml
from scipy.stats import binomtest
from sklearn.metrics import accuracy_score, classification_report, log_loss

from .atomic import atomic_dir, atomic_path
from .models import precision_policy
from .predict import member_paths, member_probabilities

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)


def labelled_splits(val_npz, test_npz):
    """{split name: (images, labels)} for every split that has labels."""
    splits = {"val": np.load(val_npz)}
    test = np.load(test_npz)
    if "y" in test:
        splits["test"] = test
    return {name: (split["x"], split["y"]) for name, split in splits.items()}


def accuracy_interval(errors, images):
    """{"low", "high"}: the 95% confidence interval of the accuracy that made `errors` in `images` digits.
    Clopper-Pearson's exact interval, as the normal approximation fails at a few errors in thousands."""
    interval = binomtest(images - errors, images).proportion_ci(0.95, method="exact")
    return {"low": float(interval.low), "high": float(interval.high)}


def score(labels, probabilities):
    predicted = probabilities.argmax(axis=1)
    errors = int((predicted != labels).sum())
    return {
        "accuracy": float(accuracy_score(labels, predicted)),
        "accuracy_95": accuracy_interval(errors, len(labels)),
        "loss": float(log_loss(labels, probabilities, labels=range(10))),
        "errors": errors,
        "images": len(labels),
    }


def plot_misclassified(images, labels, probabilities, path, limit):
    """A grid of the misclassified digits, the most confident mistakes first."""
    predicted = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(predicted != labels)
    wrong = wrong[np.argsort(-probabilities[wrong, predicted[wrong]], kind="stable")][:limit]
    columns = 10
    rows = max(1, -(-len(wrong) // columns))
    figure, axes = plt.subplots(rows, columns, figsize=(columns * 1.2, rows * 1.45 + 0.5), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, wrong):
        ax.imshow(images[i, :, :, 0], cmap="gray_r")
        ax.set_title(f"true {labels[i]}\npred {predicted[i]}", fontsize=9, color="firebrick")
    total = int((predicted != labels).sum())
    title = f"{len(wrong)} of {total} misclassified digits, most confident first" if total else "no misclassified digits"
    figure.suptitle(title, fontsize=11)
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)


def evaluate(model_paths, val_npz, test_npz, metrics_path, report_path, plots_dir, max_misclassified, tta_shift=0,
             policy="float32"):
    """Score the ensemble of model_paths, and with two or more members each member alone;
    computing in the dtype policy, with test-time augmentation if tta_shift, as predict does."""
    metrics, reports = {}, []
    with atomic_dir(plots_dir) as plots:
        (plots / "confusion").mkdir()
        (plots / "misclassified").mkdir()
        for name, (images, labels) in labelled_splits(val_npz, test_npz).items():
            members = member_probabilities(model_paths, images, 1024, tta_shift, policy)
            probabilities = members.mean(axis=0)
            metrics[name] = score(labels, probabilities)
            if len(model_paths) > 1:
                metrics[name]["members"] = {
                    Path(path).stem: score(labels, alone)["accuracy"] for path, alone in zip(model_paths, members)
                }
            reports.append(f"{name}\n{classification_report(labels, probabilities.argmax(axis=1), digits=4)}")
            pd.DataFrame({"actual": labels, "predicted": probabilities.argmax(axis=1)}).to_csv(
                plots / "confusion" / f"{name}.csv", index=False
            )
            plot_misclassified(images, labels, probabilities, plots / "misclassified" / f"{name}.png",
                               max_misclassified)
    with atomic_path(report_path) as tmp:
        tmp.write_text("\n".join(reports))
    with atomic_path(metrics_path) as tmp:
        tmp.write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("members_dir", help="the train stages' models, <variant>-<seed>.keras")
    parser.add_argument("prepared_dir")
    parser.add_argument("eval_dir", help="gets metrics.json, classification_report.txt and plots/")
    args = parser.parse_args()
    params = yaml.safe_load(Path("params.yaml").read_text())
    prepared, out = Path(args.prepared_dir), Path(args.eval_dir)
    try:
        models = member_paths(args.members_dir, params["ensemble"])
    except FileNotFoundError as error:
        raise SystemExit(f"evaluate: error: {error}") from None
    if params["train"]["final_fit"]:
        print("evaluate: warning: train.final_fit trained on the validation split too, so its scores flatter the "
              "model; the validated run's are the honest ones")
    metrics = evaluate(models, prepared / "val.npz", prepared / "test.npz", out / "metrics.json",
                       out / "classification_report.txt", out / "plots", params["evaluate"]["max_misclassified"],
                       params["ensemble"]["tta_shift"], precision_policy(params["ensemble"]["precision"]))
    for name, values in metrics.items():
        interval = values["accuracy_95"]
        print(f"evaluate: {name}: accuracy {values['accuracy']:.4%} "
              f"(95% interval {interval['low']:.2%}-{interval['high']:.2%}), "
              f"loss {values['loss']:.4f}, "
              f"{values['errors']} errors in {values['images']} images"
              + (f"; members alone: {', '.join(f'{a:.4%}' for a in values['members'].values())}"
                 if "members" in values else ""))


if __name__ == "__main__":
    main()
