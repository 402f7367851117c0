"""Stage `prepare`: check the competition CSVs, reshape to (N, 28, 28, 1) uint8 and split off the two holdouts.

The validation split is the holdout that experiments are compared on. The sealed split is a second
holdout, taken from what validation leaves: nothing trains on it, a final fit included, and no
choice between recipes looks at it, so its score is the estimate that choosing has not bent.
"""

import importlib
import threading
from pathlib import Path

from . import stage_process


def split(images, labels, val_fraction, seed, sealed_fraction=0):
    """Stratified, seeded split into (train, validation, sealed) pairs of (images, labels), each fraction of
    all the rows. The validation split depends on val_fraction and seed alone: a sealed split taken
    from the rest leaves it as it was without one."""
    # Here, not at the top: --help needs neither, and scikit-learn is slow to load.
    import numpy as np
    from sklearn.model_selection import train_test_split

    rows = np.arange(len(labels))
    held_back(val_fraction, "val", labels)
    sealed_size = held_back(sealed_fraction, "sealed", labels)
    train_idx, val_idx = train_test_split(rows, test_size=val_fraction, stratify=labels, random_state=seed)
    sealed_idx = rows[:0]
    if sealed_size:
        train_idx, sealed_idx = train_test_split(
            train_idx, test_size=sealed_size, stratify=labels[train_idx], random_state=seed
        )
    return tuple((images[idx], labels[idx]) for idx in (train_idx, val_idx, sealed_idx))


def held_back(fraction, name, labels):
    """How many of the labelled rows prepare.<name>_fraction holds back: a stratified split needs at least one
    digit of each class, or none at all."""
    size, classes = round(fraction * len(labels)), len(set(labels.tolist()))
    if 0 < size < classes:
        raise stage_process.UserError(
            f"prepare.{name}_fraction is {fraction}: {size} of train.csv's {len(labels):,} rows, fewer than its "
            f"{classes} digits; a split needs one of each"
        )
    return size


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
    splits = split(images, labels, settings.val_fraction, settings.seed, settings.sealed_fraction)
    names = ("train.npz", "val.npz", "sealed.npz", "test.npz")
    with atomic_paths(*(out_dir / name for name in names)) as paths:  # all, or none
        for path, (x, y) in zip(paths, splits, strict=False):
            np.savez(path, x=x, y=y)
        np.savez(paths[-1], **test)
    (_, y_train), (_, y_val), (_, y_sealed) = splits
    print(
        f"prepare: {len(y_train):,} train, {len(y_val):,} val, {len(y_sealed):,} sealed, "
        f"{len(test_images):,} test digits -> {out_dir}"
    )


def main(argv=None):
    parser = stage_process.argument_parser(
        "src.prepare", __doc__, "python -m src.prepare data/raw data/prepared    # as `dvc repro` runs it"
    )
    parser.add_argument("raw_dir", help="the competition's train.csv, test.csv and sample_submission.csv")
    parser.add_argument("out_dir", help="gets train.npz, val.npz, sealed.npz and test.npz")
    args = parser.parse_args(argv)
    with stage_process.stage("prepare"):
        from . import config

        prepare(args.raw_dir, args.out_dir, config.load_params().prepare)


if __name__ == "__main__":
    main()
