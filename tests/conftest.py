import os
from pathlib import Path

import pytest

from kaggle_server import FakeKaggle

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture
def competition_zip():
    """The real competition zip, byte-identical to Kaggle's; present in CI, absent in a user's clone."""
    path = SHARED_DATA / "digit-recognizer.zip"
    if not path.exists():
        if os.environ.get("CI"):
            pytest.fail(f"CI must have the real competition data at {path}")
        pytest.skip(f"needs the real competition data at {path}")
    return path


@pytest.fixture
def kaggle_server():
    with FakeKaggle() as server:
        yield server


@pytest.fixture
def kaggle_env(kaggle_server, tmp_path):
    """Environment for a subprocess whose `kaggle` client talks to kaggle_server, with an empty home."""
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAGGLE_")}
    return {**env, **kaggle_server.client_env(), "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config")}
