"""Stage `source`: decide where the data comes from, Kaggle or the offline sample.

It runs on every `dvc repro` (it is cheap, and imports nothing heavy), so that Kaggle
credentials set up after a first offline run switch the next plain `dvc repro` to the
competition data. Its output only changes when the decision does, so nothing
downstream reruns otherwise.
"""

import argparse
import json
import sys
from pathlib import Path

import yaml

from .atomic import atomic_path
from .kaggle_access import exposed_credentials_warnings, kaggle_credentials_found

SOURCES = ("auto", "kaggle", "sample")
HOW_TO_SWITCH = (
    "Set data.source in params.yaml to 'kaggle' or 'sample' (or 'auto'), "
    "or run `dvc exp run -S data.source=...`."
)


def choose_source(requested, credentials_found, previous_source=None, raw_data_here=False):
    """The source to use, and one sentence saying why.

    previous_source is the last run's decision; with raw_data_here, the data it downloaded is in
    the workspace. That keeps a teammate who pulled the team's Kaggle data from a DVC remote, and
    has no Kaggle account, on that data rather than rerunning everything on the sample.
    """
    if requested not in SOURCES:
        raise ValueError(f"data.source is {requested!r}; it must be one of {', '.join(SOURCES)}")
    if requested != "auto":
        return requested, f"data.source is '{requested}'."
    if credentials_found:
        return "kaggle", "Kaggle credentials were found (data.source: auto)."
    if previous_source == "kaggle" and raw_data_here:
        return "kaggle", (
            "No Kaggle credentials were found, but the Kaggle data is already here (from a previous run or "
            "`dvc pull`), so it is kept (data.source: auto)."
        )
    return "sample", (
        "No Kaggle credentials were found (data.source: auto), so the offline sample of 5,000 real "
        "MNIST digits is used; set up credentials (README: Kaggle credentials) to get the competition data."
    )


def previous_source(path):
    """The decision the last run left in path, or None. dvc.yaml persists it, so DVC keeps it for us."""
    return json.loads(Path(path).read_text())["source"] if Path(path).is_file() else None


def write_source(path, source):
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps({"source": source}) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="JSON file that records the chosen source")
    parser.add_argument("raw_dir", help="the download stage's output: is the last decision's data here?")
    args = parser.parse_args()
    requested = yaml.safe_load(Path("params.yaml").read_text())["data"]["source"]
    try:
        source, reason = choose_source(requested, kaggle_credentials_found(), previous_source(args.out),
                                       Path(args.raw_dir).is_dir())
    except ValueError as error:
        raise SystemExit(f"source: error: {error}") from None
    print(f"source: using '{source}'. {reason} {HOW_TO_SWITCH}")
    for warning in exposed_credentials_warnings():  # here, since this stage runs on every `dvc repro`
        print(f"source: warning: {warning}", file=sys.stderr)
    write_source(args.out, source)


if __name__ == "__main__":
    main()
