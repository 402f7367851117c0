"""Kaggle Digit Recognizer pipeline: a module per DVC stage, over library modules named for what they hold."""

import os

from . import stage_process  # noqa: F401  (notes the process that started this one, first)

# Before any stage imports TensorFlow: keep its start-up chatter out of the stage logs.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
