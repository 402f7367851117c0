"""The `kaggle` client, with credentials found without importing it and its errors in plain words."""

import os
import stat
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

CREATE_TOKEN = ("create a token at https://www.kaggle.com/settings/api and save it as ~/.kaggle/kaggle.json "
                "(chmod 600), or set KAGGLE_USERNAME and KAGGLE_KEY")
SERVER_ERRORS = (500, 502, 503, 504)
TOO_MANY_REQUESTS = 429
# The client reads these once, at import, and then prints every request with its Authorization header.
VERBOSE_VARIABLES = ("VERBOSE", "VERBOSE_OUTPUT")


class KaggleError(RuntimeError):
    """Kaggle cannot be used as asked; the message says what to do."""


class RetryPolicy(NamedTuple):
    """How a Kaggle call is tried again while Kaggle answers 429 or 5xx: data.retry in params.yaml."""

    attempts: int  # tries in all, the first included
    backoff_seconds: float  # the pause after the first failure, doubled after each further one


def credential_files(environ=os.environ, home=None):
    """The files, of those that exist, that the `kaggle` client would read credentials from.

    Importing `kaggle` authenticates on the spot and prints its help when there is nothing
    to find, so these are the places it looks, checked by hand.
    """
    home = Path(home or Path.home())
    config_dirs = [Path(environ["KAGGLE_CONFIG_DIR"])] if environ.get("KAGGLE_CONFIG_DIR") else [
        home / ".kaggle",
        Path(environ.get("XDG_CONFIG_HOME") or home / ".config") / "kaggle",
    ]
    token_files = [home / ".kaggle" / name for name in ("access_token", "access_token.txt", "credentials.json")]
    return [path for path in [d / "kaggle.json" for d in config_dirs] + token_files if path.is_file()]


def kaggle_credentials_found(environ=os.environ, home=None):
    """True when the `kaggle` client would find credentials."""
    if environ.get("KAGGLE_API_TOKEN"):
        return True
    if environ.get("KAGGLE_USERNAME") and environ.get("KAGGLE_KEY"):
        return True
    return bool(credential_files(environ, home))


def exposed_credentials_warnings(environ=os.environ, home=None):
    """One sentence per credential file that other users may read, saying how to fix it.

    Every file is named, even one that environment variables override: the key in it is exposed all the same.
    """
    if os.name == "nt":  # Windows has no such mode bits; its ACLs are another matter
        return []
    return [f"{path} holds Kaggle credentials and other users can read it: run `chmod 600 {path}`."
            for path in credential_files(environ, home) if path.stat().st_mode & (stat.S_IRGRP | stat.S_IROTH)]


def connect():
    """An authenticated KaggleApi, or KaggleError when there are no credentials."""
    if not kaggle_credentials_found():
        raise KaggleError(f"no Kaggle credentials were found: {CREATE_TOKEN}.")
    verbose = {name: os.environ.pop(name) for name in VERBOSE_VARIABLES if name in os.environ}
    try:
        from kaggle.api.kaggle_api_extended import KaggleApi  # deferred: the import itself authenticates
    finally:
        os.environ.update(verbose)

    api = KaggleApi()
    api.authenticate()
    return api


def with_retries(call, policy, *, idempotent, program):
    """call(), tried again after a growing pause while Kaggle answers 429, or 5xx when the call is idempotent.

    A 429 means the request was refused, so any call may be repeated; after a 5xx the server may
    have acted (a submission created), so only a call that may safely run twice is. Each retry
    says so on stderr, prefixed with `program`; a last failure is a KaggleError.
    """
    import requests

    if policy.attempts < 1:
        raise KaggleError(f"data.retry.attempts is {policy.attempts}; it must be 1 or more (1: no retries).")
    for attempt in range(1, policy.attempts + 1):
        try:
            return call()
        except requests.HTTPError as error:
            status = status_of(error)
            if not worth_retrying(status, idempotent):
                raise
            if attempt == policy.attempts:
                raise KaggleError(gave_up(status, attempt)) from None
            pause = retry_pause(attempt, policy.backoff_seconds, error.response.headers.get("Retry-After"))
            print(f"{program}: Kaggle answered HTTP {status}; retrying in {pause:g} s "
                  f"(attempt {attempt + 1} of {policy.attempts})", file=sys.stderr, flush=True)
            time.sleep(pause)


def worth_retrying(status, idempotent):
    return status == TOO_MANY_REQUESTS or (idempotent and status in SERVER_ERRORS)


def retry_pause(failed_attempt, backoff_seconds, retry_after=None):
    """Seconds to wait after attempt number failed_attempt (from 1): Kaggle's Retry-After when it sent one."""
    from urllib3.util.retry import Retry
    from urllib3.exceptions import InvalidHeader

    if retry_after is not None:
        try:
            return Retry().parse_retry_after(retry_after)  # seconds or an HTTP date
        except InvalidHeader:
            pass
    return backoff_seconds * 2 ** (failed_attempt - 1)


def status_of(error):
    return error.response.status_code if error.response is not None else None


@contextmanager
def plain_errors(competition):
    """Turn the client's HTTP and connection errors into a KaggleError that says what to do."""
    import requests

    try:
        yield
    except requests.HTTPError as error:
        raise KaggleError(explain(status_of(error), competition, error)) from None
    except requests.RequestException as error:
        # Only the type: the message may hold a signed download URL.
        raise KaggleError(f"the connection to Kaggle failed ({type(error).__name__}): "
                          f"check the network connection, then try again.") from None


def explain(status, competition, error):
    if status == 401:
        return f"Kaggle rejected the credentials (HTTP 401): {CREATE_TOKEN}."
    if status == 403:
        return (f"Kaggle refused access (HTTP 403): accept the competition's rules at "
                f"https://www.kaggle.com/competitions/{competition}/rules, then try again.")
    if status == 404:
        return f"Kaggle has no competition '{competition}' (HTTP 404): check data.competition in params.yaml."
    return f"Kaggle's API failed (HTTP {status}): {error}"


def gave_up(status, attempts):
    tries = f"{attempts} attempt{'s' if attempts > 1 else ''}"
    if status == TOO_MANY_REQUESTS:
        return (f"Kaggle still answered HTTP 429 (too many requests) after {tries}: "
                f"wait a few minutes, then try again.")
    return (f"Kaggle still answered HTTP {status} (a server error) after {tries}: Kaggle may be down; "
            f"try again later, or raise data.retry.attempts in params.yaml.")
