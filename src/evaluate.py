"""Stage `evaluate`: accuracy, loss, per-class report, confusion matrix and the misclassified digits.

Scored on the validation split, and on the test split where it has labels (the offline sample).
"""

import argparse
from pathlib import Path

from . import config, stage_process
from .device_policy import configure_threads, precision_policy
from .ensemble import member_paths
from .scoring import evaluate


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("members_dir", help="the train stages' models, <variant>-<seed>.keras")
    parser.add_argument("prepared_dir")
    parser.add_argument("eval_dir", help="gets metrics.json, scores.json, classification_report.txt and plots/")
    args = parser.parse_args()
    with stage_process.stage("evaluate"):
        params = config.load_params()
        prepared, out = Path(args.prepared_dir), Path(args.eval_dir)
        models = member_paths(args.members_dir, params.ensemble)
        if params.train.final_fit:
            print(
                "evaluate: warning: train.final_fit trained on the validation split too, so its scores flatter the "
                "model; the validated run's are the honest ones"
            )
        configure_threads(params.runtime.threads)
        metrics = evaluate(
            models,
            prepared / "val.npz",
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
        for name, values in metrics.items():
            interval = values["accuracy_95"]
            print(
                f"evaluate: {name}: accuracy {values['accuracy']:.4%} "
                f"(95% interval {interval['low']:.2%}-{interval['high']:.2%}), "
                f"loss {values['loss']:.4f}, "
                f"{values['errors']} errors in {values['images']} images"
                + (
                    f"; members alone: {', '.join(f'{a:.4%}' for a in values['members'].values())}"
                    if "members" in values
                    else ""
                )
            )


if __name__ == "__main__":
    main()
