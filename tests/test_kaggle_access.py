import json
import time

import pytest
import requests

from src.kaggle_access import (KaggleError, RetryPolicy, explain, exposed_credentials_warnings,
                               kaggle_credentials_found, plain_errors, retry_pause, with_retries)


@pytest.mark.parametrize(
    "environ",
    [{"KAGGLE_USERNAME": "u", "KAGGLE_KEY": "k"}, {"KAGGLE_API_TOKEN": "t"}],
)
def test_credentials_in_the_environment(environ, tmp_path):
    assert kaggle_credentials_found(environ, home=tmp_path)


@pytest.mark.parametrize(
    "file", [".kaggle/kaggle.json", ".config/kaggle/kaggle.json", ".kaggle/access_token", ".kaggle/credentials.json"]
)
def test_credentials_in_files(file, tmp_path):
    assert not kaggle_credentials_found({}, home=tmp_path)
    (tmp_path / file).parent.mkdir(parents=True)
    (tmp_path / file).write_text("{}")
    assert kaggle_credentials_found({}, home=tmp_path)


def test_kaggle_config_dir_replaces_the_default_folders(tmp_path):
    (tmp_path / ".kaggle").mkdir()
    (tmp_path / ".kaggle" / "kaggle.json").write_text("{}")
    assert not kaggle_credentials_found({"KAGGLE_CONFIG_DIR": str(tmp_path / "elsewhere")}, home=tmp_path)


def test_a_username_alone_is_not_credentials(tmp_path):
    assert not kaggle_credentials_found({"KAGGLE_USERNAME": "u"}, home=tmp_path)


def test_explain_says_what_to_do():
    assert "https://www.kaggle.com/settings/api" in explain(401, "digit-recognizer", None)
    assert "https://www.kaggle.com/competitions/digit-recognizer/rules" in explain(403, "digit-recognizer", None)
    assert "check data.competition" in explain(404, "digit-recognizer", None)


@pytest.mark.parametrize("mode, exposed", [(0o644, True), (0o640, True), (0o604, True), (0o600, False), (0o400, False)])
def test_credential_files_others_can_read_are_named(tmp_path, mode, exposed):
    kaggle_json = tmp_path / ".kaggle" / "kaggle.json"
    kaggle_json.parent.mkdir()
    kaggle_json.write_text(json.dumps({"username": "u", "key": "secret-key"}))
    kaggle_json.chmod(mode)
    warnings = exposed_credentials_warnings({"KAGGLE_USERNAME": "u", "KAGGLE_KEY": "k"}, home=tmp_path)
    assert warnings == ([f"{kaggle_json} holds Kaggle credentials and other users can read it: "
                         f"run `chmod 600 {kaggle_json}`."] if exposed else [])


def http_error(status, retry_after=None):
    response = requests.Response()
    response.status_code = status
    if retry_after is not None:
        response.headers["Retry-After"] = retry_after
    return requests.HTTPError(f"HTTP {status}", response=response)


class Kaggle:
    """A call that answers with the given HTTP errors, one per call, then "done"."""

    def __init__(self, *statuses, retry_after=None):
        self.errors = [http_error(status, retry_after) for status in statuses]
        self.calls = 0

    def __call__(self):
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "done"


@pytest.fixture
def pauses(monkeypatch):
    """The pauses with_retries asks for, taken at once."""
    taken = []
    monkeypatch.setattr(time, "sleep", taken.append)
    return taken


def test_with_retries_backs_off_until_kaggle_answers(pauses, capsys):
    kaggle = Kaggle(503, 429)
    assert with_retries(kaggle, RetryPolicy(attempts=3, backoff_seconds=2), idempotent=True, program="x") == "done"
    assert pauses == [2, 4] and kaggle.calls == 3
    assert capsys.readouterr().err.splitlines() == ["x: Kaggle answered HTTP 503; retrying in 2 s (attempt 2 of 3)",
                                                    "x: Kaggle answered HTTP 429; retrying in 4 s (attempt 3 of 3)"]


def test_with_retries_waits_as_long_as_kaggle_asks(pauses):
    kaggle = Kaggle(429, retry_after="7")
    with_retries(kaggle, RetryPolicy(attempts=2, backoff_seconds=2), idempotent=True, program="x")
    assert pauses == [7]


def test_with_retries_gives_up_after_the_last_attempt(pauses):
    kaggle = Kaggle(*[503] * 3)
    with pytest.raises(KaggleError, match=r"^Kaggle still answered HTTP 503 \(a server error\) after 3 attempts: "):
        with_retries(kaggle, RetryPolicy(attempts=3, backoff_seconds=2), idempotent=True, program="x")
    assert kaggle.calls == 3 and pauses == [2, 4]


@pytest.mark.parametrize("status, idempotent", [(401, True), (403, True), (404, True), (503, False), (500, False)])
def test_with_retries_passes_on_what_another_try_cannot_fix(pauses, status, idempotent):
    kaggle = Kaggle(status)
    with pytest.raises(requests.HTTPError):
        with_retries(kaggle, RetryPolicy(attempts=3, backoff_seconds=2), idempotent=idempotent, program="x")
    assert kaggle.calls == 1 and pauses == []


def test_a_refused_call_is_retried_even_when_it_must_not_run_twice(pauses):
    assert with_retries(Kaggle(429), RetryPolicy(attempts=2, backoff_seconds=2), idempotent=False,
                        program="x") == "done"


def test_with_retries_needs_an_attempt():
    with pytest.raises(KaggleError, match="data.retry.attempts is 0; it must be 1 or more"):
        with_retries(Kaggle(), RetryPolicy(attempts=0, backoff_seconds=2), idempotent=True, program="x")


@pytest.mark.parametrize(
    "retry_after, pause",
    [(None, 8), ("30", 30), ("Wed, 21 Oct 2015 07:28:00 GMT", 0), ("soon", 8)],  # a bad header: the backoff
)
def test_retry_pause(retry_after, pause):
    assert retry_pause(3, 2, retry_after) == pause


def test_a_broken_connection_is_one_sentence_without_the_url():
    with pytest.raises(KaggleError) as raised:
        with plain_errors("digit-recognizer"):
            raise requests.ConnectionError("https://storage.example/x.zip?X-Goog-Signature=abc")
    assert str(raised.value) == ("the connection to Kaggle failed (ConnectionError): "
                                 "check the network connection, then try again.")
