import json

import pytest

from src.source import choose_source, write_source


def test_auto_chooses_kaggle_only_with_credentials():
    assert choose_source("auto", credentials_found=True)[0] == "kaggle"
    source, reason = choose_source("auto", credentials_found=False)
    assert source == "sample" and "No Kaggle credentials" in reason


@pytest.mark.parametrize("requested", ["kaggle", "sample"])
def test_an_explicit_source_wins(requested):
    assert choose_source(requested, credentials_found=requested == "sample")[0] == requested


def test_an_unknown_source_is_refused():
    with pytest.raises(ValueError, match="data.source is 'kagle'; it must be one of auto, kaggle, sample"):
        choose_source("kagle", credentials_found=True)


def test_write_source(tmp_path):
    write_source(tmp_path / "data" / "source.json", "kaggle")
    assert json.loads((tmp_path / "data" / "source.json").read_text()) == {"source": "kaggle"}
