import dataclasses
import json
import time
from types import SimpleNamespace

import pytest
import requests

from src import config
from src.kaggle_access import (
    KaggleError,
    Outcome,
    explain,
    exposed_credentials_warnings,
    kaggle_credentials_found,
    list_submissions,
    plain_errors,
    retry_pause,
    scored,
    submit_file,
    unusable_credentials,
    wait_for_outcomes,
    with_retries,
)
from workdir import ROOT


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
    (tmp_path / file).write_text('{"username": "someone", "key": "0123"}' if file.endswith(".json") else "token")
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
    assert warnings == (
        [f"{kaggle_json} holds Kaggle credentials and other users can read it: run `chmod 600 {kaggle_json}`."]
        if exposed
        else []
    )


def http_error(status, retry_after=None):
    response = requests.Response()
    response.status_code = status
    if retry_after is not None:
        response.headers["Retry-After"] = retry_after
    return requests.HTTPError(f"HTTP {status}", response=response)


def kaggle_settings(**changes):
    """params.yaml's runtime.kaggle with changes."""
    return dataclasses.replace(config.load(ROOT / "params.yaml").runtime.kaggle, **changes)


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
    assert with_retries(kaggle, kaggle_settings(attempts=3, backoff_seconds=2), idempotent=True, program="x") == "done"
    assert pauses == [2, 4] and kaggle.calls == 3
    assert capsys.readouterr().err.splitlines() == [
        "x: Kaggle answered HTTP 503; retrying in 2 s (attempt 2 of 3)",
        "x: Kaggle answered HTTP 429; retrying in 4 s (attempt 3 of 3)",
    ]


def test_with_retries_waits_as_long_as_kaggle_asks(pauses):
    kaggle = Kaggle(429, retry_after="7")
    with_retries(kaggle, kaggle_settings(attempts=2, backoff_seconds=2), idempotent=True, program="x")
    assert pauses == [7]


def test_with_retries_gives_up_after_the_last_attempt(pauses):
    kaggle = Kaggle(*[503] * 3)
    with pytest.raises(KaggleError, match=r"^Kaggle still answered HTTP 503 \(a server error\) after 3 attempts: "):
        with_retries(kaggle, kaggle_settings(attempts=3, backoff_seconds=2), idempotent=True, program="x")
    assert kaggle.calls == 3 and pauses == [2, 4]


@pytest.mark.parametrize("status, idempotent", [(401, True), (403, True), (404, True), (503, False), (500, False)])
def test_with_retries_passes_on_what_another_try_cannot_fix(pauses, status, idempotent):
    kaggle = Kaggle(status)
    with pytest.raises(requests.HTTPError):
        with_retries(kaggle, kaggle_settings(attempts=3, backoff_seconds=2), idempotent=idempotent, program="x")
    assert kaggle.calls == 1 and pauses == []


def test_a_refused_call_is_retried_even_when_it_must_not_run_twice(pauses):
    assert (
        with_retries(Kaggle(429), kaggle_settings(attempts=2, backoff_seconds=2), idempotent=False, program="x")
        == "done"
    )


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
    assert str(raised.value) == (
        "the connection to Kaggle failed (ConnectionError): check the network connection, then try again."
    )


def test_a_lasting_server_error_points_at_the_retry_param(pauses):
    with pytest.raises(KaggleError, match=r"raise runtime\.kaggle\.attempts in params\.yaml\.$"):
        with_retries(Kaggle(500), kaggle_settings(attempts=1, backoff_seconds=2), idempotent=True, program="x")
    assert pauses == []  # attempts 1: no retries


# -- submissions ----------------------------------------------------------------------------------------------------


def kaggle_submission(ref, status, public_score=None, error_description=None):
    """What the client's competition_submissions() gives for one submission."""
    return SimpleNamespace(
        ref=ref, status=SimpleNamespace(name=status), public_score=public_score, error_description=error_description
    )


def test_waiting_looks_until_every_ref_is_scored_or_time_is_up():
    listings = iter(
        [
            [kaggle_submission(7, "PENDING")],
            [kaggle_submission(7, "PENDING")],
            [kaggle_submission(7, "COMPLETE", "0.9"), kaggle_submission(6, "ERROR", None, "bad")],
        ]
    )
    now, pauses = [0.0], []

    def sleep(seconds):
        pauses.append(seconds)
        now[0] += seconds

    outcomes = wait_for_outcomes(lambda: next(listings), {"7"}, 100, 10, clock=lambda: now[0], sleep=sleep)
    assert outcomes == {"7": ("COMPLETE", "0.9", "")}
    assert pauses == [10, 10]

    now, pauses = [0.0], []
    pending = lambda: [kaggle_submission(7, "PENDING")]  # noqa: E731
    assert wait_for_outcomes(pending, {"7"}, 25, 10, clock=lambda: now[0], sleep=sleep) == {}
    assert pauses == [10, 10, 5]
    assert wait_for_outcomes(pending, {"7"}, 0, 10, clock=lambda: now[0], sleep=sleep) == {}
    assert pauses == [10, 10, 5]  # wait 0: one look, no pause


def test_scored_keeps_the_finished_submissions_asked_for():
    submissions = [
        kaggle_submission(9, "COMPLETE", "0.95"),
        kaggle_submission(8, "ERROR", None, "bad rows"),
        kaggle_submission(7, "PENDING"),
        kaggle_submission(6, "COMPLETE", "0.5"),
    ]
    assert scored(submissions, {"9", "8", "7"}) == {
        "9": Outcome("COMPLETE", "0.95", ""),
        "8": Outcome("ERROR", "", "bad rows"),
    }


class FakeApi:
    """The few methods of the `kaggle` client's KaggleApi that submitting uses; each call answers with the next of
    `answers`, raising it if it is an exception."""

    COMPETITION_SUBMIT_UPLOAD_FAILED_MESSAGE = "Could not submit to competition"

    def __init__(self, *answers):
        self.answers = list(answers)
        self.calls = []

    def answer(self, *call):
        self.calls.append(call)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def competition_submit(self, file_name, message, competition, quiet=False):
        return self.answer("submit", file_name, message, competition)

    def competition_submissions(self, competition):
        return self.answer("submissions", competition)


def test_submit_file_uploads_and_returns_kaggles_answer(pauses, tmp_path):
    api = FakeApi(http_error(429), SimpleNamespace(message="Successfully submitted", ref=1001))
    answer = submit_file(
        api, tmp_path / "s.csv", "digit-recognizer", "seed CNN", kaggle_settings(attempts=2, backoff_seconds=1)
    )
    assert answer.ref == 1001
    assert api.calls == [("submit", str(tmp_path / "s.csv"), "seed CNN", "digit-recognizer")] * 2
    assert pauses == [1]


def test_submit_file_never_repeats_an_upload_after_a_server_error(pauses, tmp_path):
    api = FakeApi(http_error(503))
    with pytest.raises(KaggleError, match=r"^Kaggle's API failed \(HTTP 503\)"):
        submit_file(api, tmp_path / "s.csv", "digit-recognizer", "m", kaggle_settings(attempts=5, backoff_seconds=1))
    assert len(api.calls) == 1 and pauses == []


def test_a_failed_upload_kaggle_reports_in_its_answer_is_an_error(tmp_path):
    api = FakeApi(SimpleNamespace(message=FakeApi.COMPETITION_SUBMIT_UPLOAD_FAILED_MESSAGE))
    with pytest.raises(KaggleError, match=r"the upload of .*s\.csv to Kaggle failed; try again later\."):
        submit_file(api, tmp_path / "s.csv", "digit-recognizer", "m", kaggle_settings(attempts=5, backoff_seconds=1))


def test_list_submissions_tries_a_failed_look_again(pauses):
    listing = [kaggle_submission(7, "PENDING")]
    api = FakeApi(http_error(503), listing)
    assert list_submissions(api, "digit-recognizer", kaggle_settings(attempts=2, backoff_seconds=1)) == listing
    assert api.calls == [("submissions", "digit-recognizer")] * 2 and pauses == [1]
    assert list_submissions(FakeApi(None), "digit-recognizer", kaggle_settings(attempts=1, backoff_seconds=1)) == []


def test_list_submissions_says_what_to_do_about_a_refusal(pauses):
    with pytest.raises(KaggleError, match="accept the competition's rules"):
        list_submissions(FakeApi(http_error(403)), "digit-recognizer", kaggle_settings(attempts=3, backoff_seconds=1))
    assert pauses == []


@pytest.mark.parametrize(
    "content, said",
    [
        ("{not json", "is not valid JSON (line 1, column 2)"),
        ('{"username": "someone"}', "has no 'key'"),
        ("[]", "has no 'username' and no 'key'"),
        ("", "is not valid JSON"),
    ],
)
def test_a_kaggle_json_the_client_cannot_use_is_named_and_passed_over(content, said, tmp_path):
    token = tmp_path / ".kaggle" / "kaggle.json"
    token.parent.mkdir()
    token.write_text(content)
    assert not kaggle_credentials_found({}, home=tmp_path)
    [problem] = unusable_credentials({}, home=tmp_path)
    assert problem.startswith(f"{token}: {said}") and "kaggle.com/settings/api" in problem
    assert unusable_credentials({"KAGGLE_USERNAME": "u", "KAGGLE_KEY": "k"}, home=tmp_path) == []


def test_the_key_is_never_part_of_a_credential_problem(tmp_path):
    token = tmp_path / ".kaggle" / "kaggle.json"
    token.parent.mkdir()
    token.write_text('{"username": "someone", "key": "s3cr3t-key", ')
    assert "s3cr3t" not in " ".join(unusable_credentials({}, home=tmp_path))
