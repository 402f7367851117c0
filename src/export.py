"""Stage `export`: the ensemble as one TensorFlow SavedModel, which labels uint8 digits (N, 28, 28, 1) with no
code of this project."""

import argparse

from . import config, stage_process
from .ensemble import member_paths
from .saved_ensemble import write_saved_ensemble


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("members_dir", help="the train stages' models, <variant>-<seed>.keras")
    parser.add_argument("saved_model_dir", help="the SavedModel folder to write, replaced whole")
    args = parser.parse_args()
    with stage_process.stage("export"):
        params = config.load_params()
        paths = member_paths(args.members_dir, params.ensemble)
        write_saved_ensemble(paths, args.saved_model_dir, params.ensemble.tta_shift)
        print(
            f"export: wrote the ensemble of {len(paths)} members, tta_shift {params.ensemble.tta_shift}, "
            f"to {args.saved_model_dir}"
        )


if __name__ == "__main__":
    main()
