"""data/source.json: the `source` stage's decision, Kaggle or the offline sample, that later stages read."""

import json
from pathlib import Path

from .atomic import atomic_path
from .stage_process import UserError


def read_source(path):
    """The decision recorded in path, or None where there is none. dvc.yaml persists it, so DVC keeps it for us."""
    return json.loads(Path(path).read_text())["source"] if Path(path).is_file() else None


def write_source(path, source):
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps({"source": source}) + "\n")


def recorded_source(path):
    """The decision in path, for the stages after `source`; UserError where there is none."""
    source = read_source(path)
    if source is None:
        raise UserError(f"{path} does not exist; the `source` stage writes it (`dvc repro` runs it first)")
    return source
