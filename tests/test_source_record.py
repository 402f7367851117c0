import json

import pytest

from src.source_record import read_source, write_source


def test_there_is_no_source_before_any_run(tmp_path):
    assert read_source(tmp_path / "source.json") is None


def test_write_source(tmp_path):
    write_source(tmp_path / "data" / "source.json", "kaggle")
    assert json.loads((tmp_path / "data" / "source.json").read_text()) == {"source": "kaggle"}


@pytest.mark.parametrize("source", ["kaggle", "sample"])
def test_a_written_source_is_read_back_and_replaces_the_last(tmp_path, source):
    path = tmp_path / "data" / "source.json"
    write_source(path, "sample" if source == "kaggle" else "kaggle")
    write_source(path, source)
    assert read_source(path) == source
    assert sorted(p.name for p in path.parent.iterdir()) == ["source.json"]  # no temporary file left
