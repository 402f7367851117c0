"""Stage `evaluate`: accuracy, loss, per-class report, confusion matrix and the misclassified digits.

Scored on the validation split, and on the test split where it has labels (the offline sample);
the sealed holdout's scores go to scores.json alone (README: Holdouts).
"""

from pathlib import Path

from . import stage_process


def main():
    parser = stage_process.argument_parser(
        "src.evaluate", __doc__, "python -m src.evaluate models/members data/prepared eval    # as `dvc repro` runs it"
    )
    parser.add_argument("members_dir", help="the train stages' models, <variant>-<seed>.keras")
    parser.add_argument("prepared_dir", help="the prepare stage's val.npz, sealed.npz and test.npz")
    parser.add_argument("eval_dir", help="gets metrics.json, scores.json, classification_report.txt and plots/")
    args = parser.parse_args()
    with stage_process.stage("evaluate"):
        from . import config
        from .device_policy import configure_threads, precision_policy
        from .ensemble import member_paths
        from .scoring import compared_scores, evaluate

        params = config.load_params()
        prepared, out = Path(args.prepared_dir), Path(args.eval_dir)
        models = member_paths(args.members_dir, params.ensemble)
        if params.train.final_fit:
            print(
                "evaluate: warning: train.final_fit trained on the validation split too, so its scores flatter the "
                "model; the sealed holdout's, in scores.json, are honest"
            )
        configure_threads(params.runtime.threads)
        metrics = evaluate(
            models,
            prepared / "val.npz",
            prepared / "sealed.npz",
            prepared / "test.npz",
            out / "metrics.json",
            out / "scores.json",
            out / "classification_report.txt",
            out / "plots",
            params.evaluate.max_misclassified,
            params.ensemble.tta_shift,
            precision_policy(params.ensemble.precision),
            params.runtime.inference_batch_size,
        )
        headline = ", ".join(scored(name, values) for name, values in compared_scores(metrics).items())
        print(f"evaluate: {headline} -> {out}")


def scored(split, values):
    """One split's scores in a few words: the ensemble's accuracy and errors, and its members' accuracies."""
    members = sorted(values.get("members", {}).values())
    alone = f"; members alone {members[0]:.2%}-{members[-1]:.2%}" if len(members) > 1 else ""
    return f"{split} accuracy {values['accuracy']:.2%} ({values['errors']:,} of {values['images']:,} wrong{alone})"


if __name__ == "__main__":
    main()
