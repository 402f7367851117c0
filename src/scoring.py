"""Scores of the ensemble on the labelled splits: accuracy with its interval, loss, the per-class
report, the confusion matrix and the misclassified digits."""

import json
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from scipy.stats import binomtest
from sklearn.metrics import accuracy_score, classification_report, log_loss

from .atomic import atomic_dir, atomic_paths
from .ensemble import member_probabilities
from .prepared_data import load_split

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)


def labelled_splits(val_npz, test_npz):
    """{split name: (images, labels)} for every split that has labels."""
    splits = {"val": load_split(val_npz)}
    test = load_split(test_npz)
    if "y" in test:
        splits["test"] = test
    return {name: (split["x"], split["y"]) for name, split in splits.items()}


HEADLINE = ("accuracy", "errors")
SEALED = "sealed"  # the second holdout: scored into scores.json, never compared on (README: Holdouts)


def compared_scores(scores):
    """The scores of the splits experiments are compared on: all but the sealed holdout's."""
    return {name: split for name, split in scores.items() if name != SEALED}


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


def ensemble_score(model_paths, labels, members):
    """The score of the members' averaged probabilities, and with two or more members each one's accuracy alone."""
    scores = score(labels, members.mean(axis=0))
    if len(model_paths) > 1:
        alone = zip(model_paths, members, strict=True)
        scores["members"] = {Path(path).stem: score(labels, member)["accuracy"] for path, member in alone}
    return scores


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
    for ax, i in zip(axes.flat, wrong, strict=False):  # more axes than digits: the rest stay blank
        ax.imshow(images[i, :, :, 0], cmap="gray_r")
        ax.set_title(f"true {labels[i]}\npred {predicted[i]}", fontsize=9, color="firebrick")
    total = int((predicted != labels).sum())
    title = (
        f"{len(wrong)} of {total} misclassified digits, most confident first" if total else "no misclassified digits"
    )
    figure.suptitle(title, fontsize=11)
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)


def evaluate(
    model_paths,
    val_npz,
    sealed_npz,
    test_npz,
    metrics_path,
    scores_path,
    report_path,
    plots_dir,
    max_misclassified,
    tta_shift=0,
    policy="float32",
    batch_size=1024,
):
    """Score the ensemble of model_paths, and with two or more members each member alone;
    computing in the dtype policy, with test-time augmentation if tta_shift, as predict does.
    metrics_path gets the headline of each split, which `dvc metrics show` and `dvc exp show` list;
    scores_path all of it, returned too: intervals, image counts and each member alone, and the sealed
    holdout's scores, which stay out of the headline, the report and the plots so that comparing
    experiments never looks at them."""
    metrics, reports = {}, []
    # All of it lands together, or none of it: the files are renamed into place only when the plots are drawn.
    with (
        atomic_dir(plots_dir) as plots,
        atomic_paths(report_path, metrics_path, scores_path) as (report_tmp, metrics_tmp, scores_tmp),
    ):
        (plots / "confusion").mkdir()
        (plots / "misclassified").mkdir()
        compared = labelled_splits(val_npz, test_npz)
        sealed = load_split(sealed_npz)
        # prepare.sealed_fraction 0 leaves the sealed split empty
        holdouts = {**compared, SEALED: (sealed["x"], sealed["y"])} if len(sealed["y"]) else compared
        # All the splits in one pass, so that each member is loaded, and its predict step traced, once.
        every_split = member_probabilities(
            model_paths, np.concatenate([images for images, _ in holdouts.values()]), batch_size, tta_shift, policy
        )
        ends = np.cumsum([len(labels) for _, labels in holdouts.values()])[:-1]
        for (name, (images, labels)), members in zip(
            holdouts.items(), np.split(every_split, ends, axis=1), strict=True
        ):
            metrics[name] = ensemble_score(model_paths, labels, members)
            if name not in compared:
                continue
            probabilities = members.mean(axis=0)
            predicted = probabilities.argmax(axis=1)
            reports.append(f"{name}\n{classification_report(labels, predicted, digits=4)}")
            pd.DataFrame({"actual": labels, "predicted": predicted}).to_csv(
                plots / "confusion" / f"{name}.csv", index=False
            )
            plot_misclassified(
                images, labels, probabilities, plots / "misclassified" / f"{name}.png", max_misclassified
            )
        report_tmp.write_text("\n".join(reports))
        headline = {name: {key: split[key] for key in HEADLINE} for name, split in compared_scores(metrics).items()}
        metrics_tmp.write_text(json.dumps(headline, indent=2) + "\n")
        scores_tmp.write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics
