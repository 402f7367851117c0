"""Stage `predict`: label test.csv with the ensemble and write a Kaggle-ready submission.csv."""

from . import stage_process


def predict(
    model_paths, test_npz, sample_csv, source, submission_csv, batch_size, tta_shift=0, policy="float32", made_by=None
):
    """Write submission_csv from the ensemble of model_paths, computing in `policy`, with test-time augmentation
    if tta_shift (see ensemble.member_probabilities); see submission.write_submission."""
    # Here, not at the top: --help needs none of them, and they load TensorFlow.
    from .ensemble import member_probabilities
    from .prepared_data import load_split
    from .submission import write_submission

    images = load_split(test_npz)["x"]
    labels = member_probabilities(model_paths, images, batch_size, tta_shift, policy).mean(axis=0).argmax(axis=1)
    return write_submission(submission_csv, labels, sample_csv, source, made_by)


def main():
    parser = stage_process.argument_parser(
        "src.predict",
        __doc__,
        "python -m src.predict models/members data/prepared/test.npz data/raw/sample_submission.csv "
        "data/source.json submissions/submission.csv    # as `dvc repro` runs it",
    )
    parser.add_argument("members_dir", help="the train stages' models, <variant>-<seed>.keras")
    parser.add_argument("test_npz", help="the prepare stage's test digits")
    parser.add_argument("sample_csv", help="the competition's sample_submission.csv")
    parser.add_argument("source_json", help="the `source` stage's decision, recorded beside the submission")
    parser.add_argument("submission_csv", help="the file to submit; gets a .json sidecar saying where it came from")
    args = parser.parse_args()
    with stage_process.stage("predict"):
        from . import config
        from .device_policy import configure_threads, precision_policy
        from .ensemble import member_paths
        from .provenance import git_revision, running_experiment
        from .source_record import recorded_source

        params = config.load_params()
        source = recorded_source(args.source_json)
        configure_threads(params.runtime.threads)
        submission = predict(
            member_paths(args.members_dir, params.ensemble),
            args.test_npz,
            args.sample_csv,
            source,
            args.submission_csv,
            params.runtime.inference_batch_size,
            params.ensemble.tta_shift,
            precision_policy(params.ensemble.precision),
            made_by={"params": config.flat(params), "git_rev": git_revision(), "experiment": running_experiment()},
        )
        print(f"predict: {len(submission):,} labels from the {source} data -> {args.submission_csv}")


if __name__ == "__main__":
    main()
