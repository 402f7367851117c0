"""Kaggle Digit Recognizer pipeline: one module per DVC stage."""
