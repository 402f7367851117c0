"""Kaggle Digit Recognizer pipeline: a module per DVC stage, over library modules named for what they hold."""

from . import stage_process  # (notes the process that started this one, first)

# Before any stage imports TensorFlow: keep its start-up chatter out of the stage logs.
stage_process.quiet_tensorflow_start()
