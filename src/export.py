"""Stage `export`: the ensemble as one TensorFlow SavedModel and as ONNX, which label uint8 digits (N, 28, 28, 1)
with no code of this project.

Both are TensorFlow's to make, so the members, whichever Keras backend trained them, load under TensorFlow here.
"""

import os

from . import stage_process


def main():
    parser = stage_process.argument_parser(
        "src.export",
        __doc__,
        "python -m src.export models/members models/ensemble models/ensemble.onnx    # as `dvc repro` runs it",
    )
    parser.add_argument("members_dir", help="the train stages' models, <variant>-<seed>.keras")
    parser.add_argument("saved_model_dir", help="the SavedModel folder to write, replaced whole")
    parser.add_argument("onnx_file", help="the same model as ONNX")
    args = parser.parse_args()
    with stage_process.stage("export"):
        os.environ["KERAS_BACKEND"] = "tensorflow"  # before Keras is imported
        try:
            import tensorflow  # noqa: F401  (first, as in every stage: stage_process quiets its start)
        except ModuleNotFoundError:
            raise stage_process.UserError(
                "the SavedModel and ONNX files are TensorFlow's to make, and it is not installed here; "
                "pip install -r requirements.txt"
            ) from None
        from . import config
        from .atomic import atomic_dir, atomic_path
        from .ensemble import member_paths
        from .ensemble_onnx import write_onnx
        from .saved_ensemble import write_saved_ensemble

        params = config.load_params()
        paths = member_paths(args.members_dir, params.ensemble)
        with atomic_dir(args.saved_model_dir) as saved_model, atomic_path(args.onnx_file) as onnx_file:
            write_saved_ensemble(paths, saved_model, params.ensemble.tta_shift)
            write_onnx(saved_model, onnx_file)
        members = f"{len(paths)} member{'s' if len(paths) > 1 else ''}, tta_shift {params.ensemble.tta_shift}"
        print(f"export: {members} -> {args.saved_model_dir}, {args.onnx_file}")


if __name__ == "__main__":
    main()
