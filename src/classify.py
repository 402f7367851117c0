"""Label digit images that a person has (PNG or JPEG, any size, dark ink on white or white on black, grey or
colour) with the trained ensemble: one line per file, `PATH: LABEL (PROBABILITY)`.

Each image is first made into a digit as MNIST made its own (src/digit_images.py). A file that cannot be
read gets a line on stderr, the others are still labelled, and the exit status is 1. Run it where
params.yaml is: the members, their test-time augmentation and precision are the ensemble's there.
"""

import sys

from . import stage_process


def ensemble_of_members(members_dir):
    """The ensemble that params.yaml describes, as a function of uint8 images (N, 28, 28, 1) to probabilities
    (N, 10); a UserError, before any image is read, where a member is not trained yet."""
    from . import config
    from .device_policy import precision_policy
    from .ensemble import member_paths, member_probabilities

    params = config.load_params()
    paths = member_paths(members_dir, params.ensemble)
    policy = precision_policy(params.ensemble.precision)
    batch_size, tta_shift = params.runtime.inference_batch_size, params.ensemble.tta_shift
    return lambda images: member_probabilities(paths, images, batch_size, tta_shift, policy).mean(axis=0)


def main():
    parser = stage_process.argument_parser(
        "src.classify",
        __doc__,
        "python -m src.classify seven.png scan.jpg",
        "python -m src.classify --model models/ensemble seven.png",
    )
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="PNG or JPEG files, one digit each")
    parser.add_argument("--members", default="models/members", help="the train stages' models (default: %(default)s)")
    parser.add_argument("--model", metavar="SAVED_MODEL", help="a SavedModel from the export stage, in their place")
    args = parser.parse_args()
    failed = False
    with stage_process.stage("classify"):
        import numpy as np

        from .digit_images import read_digit

        if args.model:
            from .saved_ensemble import load_saved_ensemble

            probabilities_of = load_saved_ensemble(args.model)
        else:
            probabilities_of = ensemble_of_members(args.members)
        digits = []  # [(path, (28, 28, 1) uint8)]
        for path in args.images:
            try:
                digits.append((path, read_digit(path)))
            except stage_process.UserError as error:
                print(f"classify: error: {error}", file=sys.stderr)
                failed = True
        if digits:
            probabilities = probabilities_of(np.stack([digit for _, digit in digits]))  # (N, 10)
            for (path, _), each in zip(digits, probabilities, strict=True):
                print(f"{path}: {each.argmax()} ({each.max():.3f})")
    if failed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
