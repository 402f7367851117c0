"""Stage `train@<variant>-<seed>`: fit one ensemble member on the train split, watching the validation split.

Training survives a kill: the state after each epoch is backed up, and the next run with
the same params and data resumes from it and ends with the same model as an
uninterrupted run.
"""

import json
from pathlib import Path

from . import stage_process


def main():
    parser = stage_process.argument_parser(
        "src.train",
        __doc__,
        "python -m src.train --variant base --seed 42 data/prepared models/members/base-42.keras dvclive/base-42 "
        "models/backup/base-42    # as `dvc repro` runs train@base-42",
    )
    parser.add_argument("--variant", required=True, help="the ensemble member's variant, from params.yaml `variants`")
    parser.add_argument("--seed", type=int, required=True, help="the ensemble member's seed: weights, order, dropout")
    parser.add_argument("prepared_dir", help="the prepare stage's train.npz and val.npz")
    parser.add_argument("model_path", help="the trained member, a .keras file")
    parser.add_argument("live_dir", help="dvclive's folder for per-epoch metrics and plots")
    parser.add_argument("backup_root", help="where an unfinished run keeps its state; kept apart from DVC's outputs")
    args = parser.parse_args()
    with stage_process.stage("train"):
        from . import config
        from .device_policy import configure_threads
        from .training import train

        params = config.load_params()
        configure_threads(params.runtime.threads)
        prepared = Path(args.prepared_dir)
        member = params.member_train(args.variant)
        train(
            prepared / "train.npz",
            prepared / "val.npz",
            args.model_path,
            args.live_dir,
            member,
            args.seed,
            args.backup_root,
        )
        print(f"train@{args.variant}-{args.seed}: {summary(member, args.live_dir)} -> {args.model_path}")


def summary(member, live_dir):
    """The epochs trained, and the validation accuracy after the last, as dvclive recorded it."""
    epochs = f"{member.epochs} epoch{'s' if member.epochs > 1 else ''}"
    if member.final_fit:
        return f"{epochs} on the train and validation splits (final fit)"
    metrics = Path(live_dir) / "metrics.json"  # only the chief of several workers writes it
    accuracy = json.loads(metrics.read_text())["val"]["accuracy"] if metrics.is_file() else None
    return epochs + (f", val accuracy {accuracy:.2%}" if accuracy is not None else "")


if __name__ == "__main__":
    main()
