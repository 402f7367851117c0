"""Stage `source`: decide where the data comes from, Kaggle or the offline sample.

It runs on every `dvc repro` (it is cheap, and imports nothing heavy), so that Kaggle
credentials set up after a first offline run switch the next plain `dvc repro` to the
competition data. Its output only changes when the decision does, so nothing
downstream reruns otherwise.
"""

import sys
from pathlib import Path

from . import stage_process

HOW_TO_SWITCH = (
    "Set data.source in params.yaml to 'kaggle' or 'sample' (or 'auto'), or run `dvc exp run -S data.source=...`."
)


def choose_source(requested, credentials_found, previous_source=None, raw_data_here=False, local_dir=None):
    """The source to use, and one sentence saying why.

    local_dir is data.local_dir when it holds the competition files, else None. previous_source is
    the last run's decision; with raw_data_here, the data it fetched is in the workspace. That keeps
    a teammate who pulled the team's Kaggle data from a DVC remote, and has no Kaggle account, on
    that data rather than rerunning everything on the sample.
    """
    if requested != "auto":
        return requested, f"data.source is '{requested}'."
    if local_dir:
        return "local", f"the competition files are in {local_dir} (data.local_dir; data.source: auto)."
    if credentials_found:
        return "kaggle", "Kaggle credentials were found (data.source: auto)."
    if previous_source in ("kaggle", "local") and raw_data_here:
        return previous_source, (
            "No Kaggle credentials were found, but the competition data is already here (from a previous run or "
            "`dvc pull`), so it is kept (data.source: auto)."
        )
    return "sample", (
        "No Kaggle credentials were found (data.source: auto), so the offline sample of 5,000 real "
        "MNIST digits is used; set up credentials (README: Kaggle credentials) to get the competition data."
    )


def main():
    parser = stage_process.argument_parser(
        "src.source", __doc__, "python -m src.source data/source.json data/raw    # as `dvc repro` runs it"
    )
    parser.add_argument("out", help="JSON file that records the chosen source")
    parser.add_argument("raw_dir", help="the download stage's output: is the last decision's data here?")
    args = parser.parse_args()
    with stage_process.stage("source"):
        from . import config
        from .kaggle_access import exposed_credentials_warnings, kaggle_credentials_found, unusable_credentials
        from .provenance import git
        from .raw_data import holds_competition_files
        from .source_record import read_source, write_source

        # The whole of params.yaml, though this stage reads one param: it runs first in every `dvc repro` and
        # `dvc exp run`, so a bad param stops the run here, before DVC removes any stage's outputs.
        params = config.load_params()
        config.check_recipe_overrides(config.PARAMS_FILE, git("show", f"HEAD:./{config.PARAMS_FILE}"))
        local_dir = params.data.local_dir if holds_competition_files(params.data.local_dir) else None
        source, reason = choose_source(
            params.data.source,
            kaggle_credentials_found(),
            read_source(args.out),
            Path(args.raw_dir).is_dir(),
            local_dir,
        )
        print(f"source: using '{source}'. {reason} {HOW_TO_SWITCH}")
        # `dvc exp run -S` leaves its values in params.yaml for the next run: say what this one trains.
        members = [f"{variant}-{seed}" for variant, seed in params.ensemble.members]
        print(
            f"source: recipe {params.recipe}; {len(members)} member{'s' if len(members) > 1 else ''} "
            f"({', '.join(members)}){'; a final fit on train and validation' if params.train.final_fit else ''}"
        )
        # Here, since this stage runs on every `dvc repro`. A broken credential file is named and passed over:
        # `auto` goes on with what works, and only `kaggle` needs the file.
        for warning in [*unusable_credentials(), *exposed_credentials_warnings()]:
            print(f"source: warning: {warning}", file=sys.stderr)
        write_source(args.out, source)


if __name__ == "__main__":
    main()
