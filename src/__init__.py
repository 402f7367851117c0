"""Kaggle Digit Recognizer pipeline: a module per DVC stage, over library modules named for what they hold."""

import os

# Before any stage imports TensorFlow: keep its start-up chatter out of the stage logs.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
