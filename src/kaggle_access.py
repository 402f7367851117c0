"""The `kaggle` client, with credentials found without importing it and its errors in plain words."""

import os
from contextlib import contextmanager
from pathlib import Path

CREATE_TOKEN = ("create a token at https://www.kaggle.com/settings/api and save it as ~/.kaggle/kaggle.json "
                "(chmod 600), or set KAGGLE_USERNAME and KAGGLE_KEY")


class KaggleError(RuntimeError):
    """Kaggle cannot be used as asked; the message says what to do."""


def kaggle_credentials_found(environ=os.environ, home=None):
    """True when the `kaggle` client would find credentials.

    Importing `kaggle` authenticates on the spot and prints its help when there is nothing
    to find, so these are the places it looks, checked by hand.
    """
    home = Path(home or Path.home())
    if environ.get("KAGGLE_API_TOKEN"):
        return True
    if environ.get("KAGGLE_USERNAME") and environ.get("KAGGLE_KEY"):
        return True
    config_dirs = [Path(environ["KAGGLE_CONFIG_DIR"])] if environ.get("KAGGLE_CONFIG_DIR") else [
        home / ".kaggle",
        Path(environ.get("XDG_CONFIG_HOME") or home / ".config") / "kaggle",
    ]
    token_files = [home / ".kaggle" / name for name in ("access_token", "access_token.txt", "credentials.json")]
    return any(d.joinpath("kaggle.json").is_file() for d in config_dirs) or any(f.is_file() for f in token_files)


def connect():
    """An authenticated KaggleApi, or KaggleError when there are no credentials."""
    if not kaggle_credentials_found():
        raise KaggleError(f"no Kaggle credentials were found: {CREATE_TOKEN}.")
    from kaggle.api.kaggle_api_extended import KaggleApi  # deferred: the import itself authenticates

    api = KaggleApi()
    api.authenticate()
    return api


@contextmanager
def plain_errors(competition):
    """Turn the client's HTTP errors into a KaggleError that says what to do."""
    import requests

    try:
        yield
    except requests.HTTPError as error:
        status = error.response.status_code if error.response is not None else None
        raise KaggleError(explain(status, competition, error)) from None


def explain(status, competition, error):
    if status == 401:
        return f"Kaggle rejected the credentials (HTTP 401): {CREATE_TOKEN}."
    if status == 403:
        return (f"Kaggle refused access (HTTP 403): accept the competition's rules at "
                f"https://www.kaggle.com/competitions/{competition}/rules, then try again.")
    if status == 404:
        return f"Kaggle has no competition '{competition}' (HTTP 404): check data.competition in params.yaml."
    return f"Kaggle's API failed (HTTP {status}): {error}"
