"""Stage `prepare`: check the competition CSVs, reshape to (N, 28, 28, 1) uint8 and split off validation."""

import importlib
import threading
from pathlib import Path

from . import stage_process


def split(images, labels, val_fraction, seed):
    """Stratified, seeded split into (train, validation) pairs of (images, labels)."""
    # Here, not at the top: --help needs neither, and scikit-learn is slow to load.
    import numpy as np
    from sklearn.model_selection import train_test_split

    train_idx, val_idx = train_test_split(
        np.arange(len(labels)), test_size=val_fraction, stratify=labels, random_state=seed
    )
    return (images[train_idx], labels[train_idx]), (images[val_idx], labels[val_idx])


def prepare(raw_dir, out_dir, settings):
    """Check raw_dir's CSVs and write train.npz, val.npz and test.npz to out_dir, split as `settings`
    (config.Prepare) says."""
    import numpy as np  # here, as split's imports

    from .atomic import atomic_paths
    from .competition_csv import read_submission, read_test, read_train

    raw_dir, out_dir = Path(raw_dir), Path(out_dir)
    # scikit-learn is slow to import: load it while Arrow parses the CSVs, which
    # releases the GIL. split's own import then waits for this one to finish.
    threading.Thread(target=importlib.import_module, args=("sklearn.model_selection",), daemon=True).start()
    # Read and check everything before writing anything.
    images, labels = read_train(raw_dir / "train.csv")
    test_images = read_test(raw_dir / "test.csv")
    read_submission(raw_dir / "sample_submission.csv", rows=len(test_images))
    test = {"x": test_images}
    labels_csv = raw_dir / "test_labels.csv"  # only the offline sample has test labels
    if labels_csv.exists():
        test["y"] = read_submission(labels_csv, rows=len(test_images))[:, 1].astype(np.uint8)
    (x_train, y_train), (x_val, y_val) = split(images, labels, settings.val_fraction, settings.seed)
    splits = ("train.npz", "val.npz", "test.npz")
    with atomic_paths(*(out_dir / name for name in splits)) as (train_tmp, val_tmp, test_tmp):  # all, or none
        np.savez(train_tmp, x=x_train, y=y_train)
        np.savez(val_tmp, x=x_val, y=y_val)
        np.savez(test_tmp, **test)
    print(f"prepare: {len(y_train):,} train, {len(y_val):,} val, {len(test_images):,} test digits -> {out_dir}")


def main(argv=None):
    parser = stage_process.argument_parser(
        "src.prepare", __doc__, "python -m src.prepare data/raw data/prepared    # as `dvc repro` runs it"
    )
    parser.add_argument("raw_dir", help="the competition's train.csv, test.csv and sample_submission.csv")
    parser.add_argument("out_dir", help="gets train.npz, val.npz and test.npz")
    args = parser.parse_args(argv)
    with stage_process.stage("prepare"):
        from . import config

        prepare(args.raw_dir, args.out_dir, config.load_params().prepare)


if __name__ == "__main__":
    main()
