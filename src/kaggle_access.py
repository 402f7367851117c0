"""The `kaggle` client, with credentials found without importing it and its errors in plain words."""

import json
import os
import stat
import sys
import time
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

from .stage_process import UserError

CREATE_TOKEN = (
    "create a token at https://www.kaggle.com/settings/api and save it as ~/.kaggle/kaggle.json "
    "(chmod 600), or set KAGGLE_USERNAME and KAGGLE_KEY"
)
SERVER_ERRORS = (500, 502, 503, 504)
TOO_MANY_REQUESTS = 429
SCORED = ("COMPLETE", "ERROR")  # Kaggle's final submission statuses; the other is PENDING
# The client reads these once, at import, and then prints every request with its Authorization header.
VERBOSE_VARIABLES = ("VERBOSE", "VERBOSE_OUTPUT")


class KaggleError(UserError, RuntimeError):
    """Kaggle cannot be used as asked; the message says what to do."""


class Outcome(NamedTuple):
    """Kaggle's verdict on a submission, as ListSubmissions gives it."""

    status: str  # one of SCORED
    public_score: str
    error: str  # Kaggle's errorDescription


def credential_files(environ=os.environ, home=None):
    """The files, of those that exist, that the `kaggle` client would read credentials from.

    Importing `kaggle` authenticates on the spot and prints its help when there is nothing
    to find, so these are the places it looks, checked by hand.
    """
    home = Path(home or Path.home())
    config_dirs = (
        [Path(environ["KAGGLE_CONFIG_DIR"])]
        if environ.get("KAGGLE_CONFIG_DIR")
        else [
            home / ".kaggle",
            Path(environ.get("XDG_CONFIG_HOME") or home / ".config") / "kaggle",
        ]
    )
    token_files = [home / ".kaggle" / name for name in ("access_token", "access_token.txt", "credentials.json")]
    return [path for path in [d / "kaggle.json" for d in config_dirs] + token_files if path.is_file()]


def kaggle_credentials_found(environ=os.environ, home=None):
    """True when the `kaggle` client would find credentials it can use."""
    return credentials_from_environment(environ) or any(
        not credential_problem(path) for path in credential_files(environ, home)
    )


def credentials_from_environment(environ):
    return bool(environ.get("KAGGLE_API_TOKEN") or (environ.get("KAGGLE_USERNAME") and environ.get("KAGGLE_KEY")))


def unusable_credentials(environ=os.environ, home=None):
    """One sentence per credential file that the `kaggle` client cannot use, naming it and what is wrong, when no
    usable credentials are found; none otherwise."""
    if kaggle_credentials_found(environ, home):
        return []
    return [f"{path}: {problem}" for path in credential_files(environ, home) if (problem := credential_problem(path))]


def credential_problem(path):
    """What keeps the `kaggle` client from using the credential file at path, in words; "" when nothing does.
    The key itself is never part of the answer."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as error:
        return f"cannot be read ({getattr(error, 'strerror', None) or 'not text'}); {CREATE_TOKEN}"
    if path.name != "kaggle.json":
        return "" if text.strip() else f"is empty; {CREATE_TOKEN}"
    try:
        token = json.loads(text)
    except ValueError as error:
        return f"is not valid JSON (line {error.lineno}, column {error.colno}); {CREATE_TOKEN}"
    missing = [name for name in ("username", "key") if not (isinstance(token, dict) and token.get(name))]
    return f"has no {' and no '.join(map(repr, missing))}; {CREATE_TOKEN}" if missing else ""


def exposed_credentials_warnings(environ=os.environ, home=None):
    """One sentence per credential file that other users may read, saying how to fix it.

    Every file is named, even one that environment variables override: the key in it is exposed all the same.
    """
    if os.name == "nt":  # Windows has no such mode bits; its ACLs are another matter
        return []
    return [
        f"{path} holds Kaggle credentials and other users can read it: run `chmod 600 {path}`."
        for path in credential_files(environ, home)
        if path.stat().st_mode & (stat.S_IRGRP | stat.S_IROTH)
    ]


def connect():
    """An authenticated KaggleApi, or KaggleError when there are no credentials."""
    if not kaggle_credentials_found():
        problems = unusable_credentials()
        raise KaggleError(problems[0] if problems else f"no Kaggle credentials were found: {CREATE_TOKEN}.")
    verbose = {name: os.environ.pop(name) for name in VERBOSE_VARIABLES if name in os.environ}
    try:
        from kaggle.api.kaggle_api_extended import (
            KaggleApi,  # deferred: the import itself authenticates
        )
    finally:
        os.environ.update(verbose)

    api = KaggleApi()
    api.authenticate()
    return api


def with_retries(call, policy, *, idempotent, program):
    """call(), with every request's waits bounded as `policy` (config.Kaggle) says, and tried again after a
    growing pause while Kaggle answers 429, or 5xx or nothing at all when the call is idempotent.

    A 429 means the request was refused, so any call may be repeated; after a 5xx or a stall the
    server may have acted (a submission created), so only a call that may safely run twice is.
    Each retry says so on stderr, prefixed with `program`; a last failure is a KaggleError.
    """
    import requests

    for attempt in range(1, policy.attempts + 1):
        try:
            with bounded_waits(policy):
                return call()
        except requests.HTTPError as error:
            status = status_of(error)
            if not worth_retrying(status, idempotent):
                raise
            failure, retry_after = f"Kaggle answered HTTP {status}", error.response.headers.get("Retry-After")
            if attempt == policy.attempts:
                raise KaggleError(gave_up(status, attempt)) from None
        except (requests.Timeout, requests.ConnectionError) as error:
            if not idempotent:
                raise
            failure, retry_after = stalled(error, policy), None
            if attempt == policy.attempts:
                raise KaggleError(
                    f"{failure}, {attempt} times: check the network connection, then try again; "
                    f"runtime.kaggle in params.yaml sets the waits"
                ) from None
        pause = retry_pause(attempt, policy.backoff_seconds, retry_after)
        print(
            f"{program}: {failure}; retrying in {pause:g} s (attempt {attempt + 1} of {policy.attempts})",
            file=sys.stderr,
            flush=True,
        )
        time.sleep(pause)


def stalled(error, policy):
    """What a timeout or a broken connection was, in words, without its message (it may hold a signed URL)."""
    import requests

    if isinstance(error, requests.ConnectTimeout):
        return f"Kaggle could not be reached within {policy.connect_timeout_seconds:g} s"
    if isinstance(error, requests.Timeout):
        return f"Kaggle sent nothing for {policy.stall_timeout_seconds:g} s"
    return f"the connection to Kaggle failed ({type(error).__name__})"


@contextmanager
def bounded_waits(policy):
    """Every HTTP request made inside, by the `kaggle` client too, waits at most policy.connect_timeout_seconds to
    connect and policy.stall_timeout_seconds for each byte. The client sets no timeout on its API calls, and
    five minutes on each read of a download: a network that takes connections and never answers would hang it."""
    from requests.adapters import HTTPAdapter

    send = HTTPAdapter.send
    limits = (policy.connect_timeout_seconds, policy.stall_timeout_seconds)

    def bounded_send(self, request, stream=False, timeout=None, **options):
        return send(self, request, stream=stream, timeout=limits, **options)

    HTTPAdapter.send = bounded_send
    try:
        yield
    finally:
        HTTPAdapter.send = send


def worth_retrying(status, idempotent):
    return status == TOO_MANY_REQUESTS or (idempotent and status in SERVER_ERRORS)


def retry_pause(failed_attempt, backoff_seconds, retry_after=None):
    """Seconds to wait after attempt number failed_attempt (from 1): Kaggle's Retry-After when it sent one."""
    from urllib3.exceptions import InvalidHeader
    from urllib3.util.retry import Retry

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
        raise KaggleError(
            f"the connection to Kaggle failed ({type(error).__name__}): check the network connection, then try again."
        ) from None


def explain(status, competition, error):
    if status == 401:
        return f"Kaggle rejected the credentials (HTTP 401): {CREATE_TOKEN}."
    if status == 403:
        return (
            f"Kaggle refused access (HTTP 403): accept the competition's rules at "
            f"https://www.kaggle.com/competitions/{competition}/rules, then try again."
        )
    if status == 404:
        return f"Kaggle has no competition '{competition}' (HTTP 404): check data.competition in params.yaml."
    return f"Kaggle's API failed (HTTP {status}): {error}"


def gave_up(status, attempts):
    tries = f"{attempts} attempt{'s' if attempts > 1 else ''}"
    if status == TOO_MANY_REQUESTS:
        return f"Kaggle still answered HTTP 429 (too many requests) after {tries}: wait a few minutes, then try again."
    return (
        f"Kaggle still answered HTTP {status} (a server error) after {tries}: Kaggle may be down; "
        f"try again later, or raise runtime.kaggle.attempts in params.yaml."
    )


def submit_file(api, submission_csv, competition, message, retry):
    """Upload submission_csv with the `kaggle` client and return Kaggle's answer.

    A 429 is retried as `retry` says; a 5xx is not, since Kaggle may have taken the submission.
    """
    with plain_errors(competition):
        response = with_retries(
            lambda: api.competition_submit(str(submission_csv), message, competition, quiet=True),
            retry,
            idempotent=False,
            program="submit",
        )
    # A failed upload is reported in the message, not raised.
    if response.message == api.COMPETITION_SUBMIT_UPLOAD_FAILED_MESSAGE:
        raise KaggleError(f"the upload of {submission_csv} to Kaggle failed; try again later.")
    return response


def list_submissions(api, competition, retry):
    """Kaggle's latest submissions to `competition`, newest first; a read, so a 429 or 5xx is tried again."""
    with plain_errors(competition):
        return (
            with_retries(lambda: api.competition_submissions(competition), retry, idempotent=True, program="submit")
            or []
        )


def scored(submissions, refs):
    """{ref: Outcome} for those of `submissions` with a ref in `refs` (strings) that Kaggle has finished scoring."""
    return {
        str(s.ref): Outcome(s.status.name, s.public_score or "", s.error_description or "")
        for s in submissions
        if str(s.ref) in refs and s.status.name in SCORED
    }


def wait_for_outcomes(list_latest, refs, wait_seconds, poll_seconds, clock=time.monotonic, sleep=time.sleep):
    """Call list_latest() every poll_seconds until all `refs` are scored or wait_seconds have passed.

    Returns scored()'s {ref: Outcome}, which lacks the refs still pending; with wait_seconds 0 it looks once.
    """
    deadline = clock() + wait_seconds
    while True:
        outcomes = scored(list_latest(), refs)
        left = deadline - clock()
        if outcomes.keys() == set(refs) or left <= 0:
            return outcomes
        sleep(min(poll_seconds, left))


def competition_sample_submission(api, competition, folder, retry):
    """The competition's own sample_submission.csv, downloaded from Kaggle into folder: what a submission must
    match, whatever the local data is. Kaggle may send it zipped."""
    with plain_errors(competition):
        with_retries(
            lambda: api.competition_download_file(
                competition, "sample_submission.csv", path=str(folder), force=True, quiet=True
            ),
            retry,
            idempotent=True,
            program="submit",
        )
    for path in Path(folder).iterdir():
        if path.name == "sample_submission.csv":
            return path
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                if "sample_submission.csv" in archive.namelist():
                    return Path(archive.extract("sample_submission.csv", Path(folder) / "unzipped"))
    raise KaggleError(f"Kaggle sent no sample_submission.csv for '{competition}'.")


def submissions_left_today(api, competition, retry):
    """How many more submissions Kaggle takes today (GetSubmissionLimits); a read, so tried again as reads are."""
    with plain_errors(competition):
        limits = with_retries(
            lambda: api.competition_get_submission_limits(competition), retry, idempotent=True, program="submit"
        )
    return limits.num_allowed_now
