"""Stage `train@<variant>-<seed>`: fit one ensemble member on the train split, watching the validation split.

Training survives a kill: the state after each epoch is backed up, and the next run with
the same params and data resumes from it and ends with the same model as an
uninterrupted run.
"""

import argparse
from pathlib import Path

from . import config, stage_process
from .device_policy import configure_threads
from .training import train


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", required=True, help="the ensemble member's variant, from params.yaml `variants`")
    parser.add_argument("--seed", type=int, required=True, help="the ensemble member's seed: weights, order, dropout")
    parser.add_argument("prepared_dir")
    parser.add_argument("model_path")
    parser.add_argument("live_dir", help="dvclive's folder for per-epoch metrics and plots")
    parser.add_argument("backup_root", help="where an unfinished run keeps its state; kept apart from DVC's outputs")
    args = parser.parse_args()
    with stage_process.stage("train"):
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


if __name__ == "__main__":
    main()
