import hashlib
import io
import math
import re
import socket
import subprocess
import sys
import threading
import time
import zipfile

import pytest

from competition_data import competition_files, zip_of
from conftest import SHARED_DATA
from kaggle_server import Failure
from src.competition_csv import read_test
from src.raw_data import COMPETITION_FILES
from src.source_record import write_source
from workdir import ROOT, assert_no_secret, environment_without_kaggle, make_workdir, run_module, set_param

QUICK_RETRY = {"attempts": 3, "backoff_seconds": 0.01, "connect_timeout_seconds": 10, "stall_timeout_seconds": 30}


def archive(members):
    """A zip holding the named members, each a few bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name in members:
            zf.writestr(name, "x")
    return buffer.getvalue()


def workdir_for(tmp_path, source, **params):
    """A project whose `source` stage chose source, with params (dotted name: value) set in its params.yaml."""
    workdir = make_workdir(tmp_path / "project")
    for dotted, value in params.items():
        set_param(workdir, dotted, value)
    write_source(workdir / "data" / "source.json", source)
    return workdir


def kaggle_workdir(tmp_path, **params):
    """A project that downloads from Kaggle, with params (dotted name: value) set in its params.yaml."""
    return workdir_for(tmp_path, "kaggle", **params)


def run_download(workdir, env):
    return run_module(workdir, "src.download", "data/source.json", "data/raw", env=env)


# The kaggle client waits 2, 4, ... 32 s, hard-coded, between its tries of a broken download;
# the stage runs as usual, with time.sleep made instant.
WITHOUT_PAUSES = (
    "import runpy, time; time.sleep = lambda seconds: None; "
    "runpy.run_module('src.download', run_name='__main__', alter_sys=True)"
)


def run_download_without_pauses(workdir, env):
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_PAUSES, "data/source.json", "data/raw"],
        cwd=workdir,
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )


def assert_raw_files_are(workdir, files):
    for name in COMPETITION_FILES:
        assert (workdir / "data" / "raw" / name).read_bytes() == (files / name).read_bytes()


def data_left(workdir):
    """Every path under data/, temporary ones included."""
    return sorted(str(p.relative_to(workdir / "data")) for p in (workdir / "data").rglob("*"))


def test_kaggle_download_is_byte_identical(tmp_path, kaggle_server, kaggle_env, competition_zip):
    kaggle_server.zip_bytes = competition_zip.read_bytes()
    workdir = kaggle_workdir(tmp_path)
    result = run_download(workdir, kaggle_env)
    assert result.returncode == 0, result.stderr
    assert_no_secret(kaggle_env, result.stdout + result.stderr)
    expected = dict(line.split()[::-1] for line in (SHARED_DATA / "SHA256SUMS").read_text().splitlines())
    for name in ("train.csv", "test.csv", "sample_submission.csv"):
        assert hashlib.sha256((workdir / "data" / "raw" / name).read_bytes()).hexdigest() == expected[name]
    assert kaggle_server.calls == ["DownloadDataFiles"]
    assert sorted(p.name for p in (workdir / "data").iterdir()) == ["raw", "source.json"]  # no leftovers


@pytest.mark.parametrize(
    "status, advice",
    [
        (401, "Kaggle rejected the credentials (HTTP 401): create a token at https://www.kaggle.com/settings/api"),
        (403, "accept the competition's rules at https://www.kaggle.com/competitions/digit-recognizer/rules"),
    ],
)
def test_kaggle_refusals_say_what_to_do(tmp_path, kaggle_server, kaggle_env, status, advice):
    kaggle_server.zip_bytes = zip_of(competition_files(tmp_path / "files"))
    kaggle_server.failures["DownloadDataFiles"] = (status, "Permission denied")
    workdir = kaggle_workdir(tmp_path)
    result = run_download(workdir, kaggle_env)
    assert result.returncode != 0
    [message] = result.stderr.strip().splitlines()  # one sentence, no traceback
    assert message.startswith("download: error: ") and advice in message
    assert kaggle_server.calls == ["DownloadDataFiles"]  # a refusal is final: not retried
    assert not (workdir / "data" / "raw").exists()
    assert_no_secret(kaggle_env, result.stdout + result.stderr)


def test_an_unknown_competition_points_at_params(tmp_path, kaggle_server, kaggle_env):
    workdir = kaggle_workdir(tmp_path, **{"data.competition": "digit-recogniser"})
    result = run_download(workdir, kaggle_env)
    assert result.returncode != 0
    assert result.stderr.splitlines() == [
        "download: error: Kaggle has no competition 'digit-recogniser' (HTTP 404): "
        "check data.competition in params.yaml."
    ]
    assert kaggle_server.calls == ["DownloadDataFiles"]
    assert data_left(workdir) == ["source.json"]
    assert_no_secret(kaggle_env, result.stdout + result.stderr)


@pytest.mark.parametrize(
    "key, failure, pauses",
    [
        ("DownloadDataFiles", Failure(503, "Service Unavailable", times=2), ["0.01", "0.02"]),  # doubling
        ("download", Failure(500, "Internal Server Error", times=2), ["0.01", "0.02"]),
        ("download", Failure(429, "Too Many Requests", times=1, retry_after="1"), ["1"]),  # Kaggle's pause wins
    ],
)
def test_passing_server_errors_are_retried_until_the_download_succeeds(
    tmp_path, kaggle_server, kaggle_env, key, failure, pauses
):
    files = competition_files(tmp_path / "files")
    kaggle_server.zip_bytes = zip_of(files)
    kaggle_server.failures[key] = failure
    workdir = kaggle_workdir(tmp_path, **{"runtime.kaggle": QUICK_RETRY})
    result = run_download(workdir, kaggle_env)
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        f"download: Kaggle answered HTTP {failure.status}; retrying in {pause} s (attempt {attempt} of 3)"
        for attempt, pause in enumerate(pauses, start=2)
    ]
    assert kaggle_server.calls == ["DownloadDataFiles"] * (failure.times + 1)
    assert_raw_files_are(workdir, files)
    assert data_left(workdir) == ["raw", *(f"raw/{name}" for name in sorted(COMPETITION_FILES)), "source.json"]
    assert_no_secret(kaggle_env, result.stdout + result.stderr)


@pytest.mark.parametrize(
    "key, status, advice",
    [
        (
            "download",
            503,
            "Kaggle still answered HTTP 503 (a server error) after 3 attempts: Kaggle may be down; "
            "try again later, or raise runtime.kaggle.attempts in params.yaml.",
        ),
        (
            "DownloadDataFiles",
            429,
            "Kaggle still answered HTTP 429 (too many requests) after 3 attempts: wait a few minutes, then try again.",
        ),
    ],
)
def test_a_lasting_server_error_ends_in_one_line_after_the_last_attempt(
    tmp_path, kaggle_server, kaggle_env, key, status, advice
):
    kaggle_server.zip_bytes = zip_of(competition_files(tmp_path / "files"))
    kaggle_server.failures[key] = (status, "Try again later")
    workdir = kaggle_workdir(tmp_path, **{"runtime.kaggle": QUICK_RETRY})
    result = run_download(workdir, kaggle_env)
    assert result.returncode != 0
    *retries, message = result.stderr.splitlines()
    assert [line.split(";")[0] for line in retries] == [f"download: Kaggle answered HTTP {status}"] * 2
    assert message == f"download: error: {advice}"
    assert kaggle_server.calls == ["DownloadDataFiles"] * 3
    assert data_left(workdir) == ["source.json"]
    assert_no_secret(kaggle_env, result.stdout + result.stderr)


def test_a_download_broken_once_is_resumed_byte_identical(tmp_path, kaggle_server, kaggle_env):
    # Over 2 MB, so that the half sent before the break holds a whole 1 MB chunk of the client's.
    files = competition_files(tmp_path / "files", train_rows=800)
    kaggle_server.zip_bytes = zip_of(files)
    kaggle_server.resets = 1
    workdir = kaggle_workdir(tmp_path)
    result = run_download_without_pauses(workdir, kaggle_env)
    assert result.returncode == 0, result.stderr
    whole, resumed = kaggle_server.file_gets
    assert whole is None and 0 < int(re.fullmatch(r"bytes=(\d+)-", resumed)[1]) < len(kaggle_server.zip_bytes)
    assert kaggle_server.calls == ["DownloadDataFiles"]
    assert_raw_files_are(workdir, files)
    assert data_left(workdir) == ["raw", *(f"raw/{name}" for name in sorted(COMPETITION_FILES)), "source.json"]
    assert_no_secret(kaggle_env, result.stdout + result.stderr)


def test_a_download_that_always_breaks_leaves_no_partial_file(tmp_path, kaggle_server, kaggle_env):
    kaggle_server.zip_bytes = zip_of(competition_files(tmp_path / "files", train_rows=800))
    kaggle_server.resets = math.inf
    workdir = kaggle_workdir(tmp_path)
    result = run_download_without_pauses(workdir, kaggle_env)
    assert result.returncode != 0
    assert result.stderr.splitlines() == [
        "download: error: the connection to Kaggle failed (ChunkedEncodingError): "
        "check the network connection, then try again."
    ]
    assert len(kaggle_server.file_gets) > 1  # the client did try again before giving up
    assert data_left(workdir) == ["source.json"]
    assert_no_secret(kaggle_env, result.stdout + result.stderr)


@pytest.mark.parametrize(
    "members, advice",
    [
        (["train.csv", "sample_submission.csv"], "digit-recognizer.zip: the archive lacks test.csv."),
        (
            ["train.csv", "test.csv", "sample_submission.csv", "../train.csv"],
            "digit-recognizer.zip: refusing the unsafe member path '../train.csv'.",
        ),
    ],
)
def test_a_bad_archive_from_kaggle_is_refused(tmp_path, kaggle_server, kaggle_env, members, advice):
    kaggle_server.zip_bytes = archive(members)
    workdir = kaggle_workdir(tmp_path)
    result = run_download(workdir, kaggle_env)
    assert result.returncode != 0
    assert result.stderr.splitlines() == [f"download: error: {advice}"]
    assert data_left(workdir) == ["source.json"]
    assert_no_secret(kaggle_env, result.stdout + result.stderr)


def test_the_clients_verbose_mode_does_not_print_the_key(tmp_path, kaggle_server, kaggle_env):
    # With VERBOSE=1 the client would print every request, Authorization header included.
    kaggle_server.zip_bytes = zip_of(competition_files(tmp_path / "files"))
    workdir = kaggle_workdir(tmp_path)
    result = run_download(workdir, {**kaggle_env, "VERBOSE": "1"})
    assert result.returncode == 0, result.stderr
    assert kaggle_server.auth_headers  # the key was sent, so there was something to leak
    assert_no_secret(kaggle_env, result.stdout + result.stderr)


def test_kaggle_without_credentials_says_how_to_get_them(tmp_path):
    workdir = kaggle_workdir(tmp_path)
    result = run_download(workdir, environment_without_kaggle(tmp_path))
    assert result.returncode != 0
    assert result.stderr.startswith("download: error: no Kaggle credentials were found: create a token at ")
    assert result.stdout == ""


def test_the_sample_is_written_as_params_yaml_says(tmp_path):
    workdir = workdir_for(tmp_path, "sample", **{"data.sample.test_rows": 10})
    result = run_download(workdir, environment_without_kaggle(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "download: sample data written to data/raw\n"
    raw = workdir / "data" / "raw"
    written = sorted([*COMPETITION_FILES, "test_labels.csv"])
    assert sorted(p.name for p in raw.iterdir()) == written
    assert read_test(raw / "test.csv").shape == (10, 28, 28, 1)
    assert data_left(workdir) == ["raw", *(f"raw/{name}" for name in written), "source.json"]  # no leftovers


def test_without_the_source_stages_decision_nothing_is_downloaded(tmp_path):
    workdir = make_workdir(tmp_path / "project")
    result = run_download(workdir, environment_without_kaggle(tmp_path))
    assert result.returncode == 1
    assert result.stderr == (
        "download: error: data/source.json does not exist; the `source` stage writes it (`dvc repro` runs it first)\n"
    )
    assert result.stdout == "" and not (workdir / "data").exists()


class SilentServer:
    """A server on 127.0.0.1 that takes connections and never answers: a network that stalls."""

    def __init__(self):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.connections = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while True:
            try:
                self.connections.append(self.listener.accept()[0])
            except OSError:
                return

    @property
    def url(self):
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}"

    def close(self):
        self.listener.close()
        for connection in self.connections:
            connection.close()


def test_a_network_that_never_answers_fails_in_bounded_time_and_leaves_nothing(tmp_path, kaggle_env):
    server = SilentServer()
    try:
        env = {**kaggle_env, "HTTP_PROXY": server.url, "http_proxy": server.url}
        settings = {**QUICK_RETRY, "attempts": 2, "stall_timeout_seconds": 1, "connect_timeout_seconds": 1}
        workdir = kaggle_workdir(tmp_path, **{"runtime.kaggle": settings})
        start = time.monotonic()
        result = run_download(workdir, env)
        elapsed = time.monotonic() - start
    finally:
        server.close()
    assert result.returncode == 1
    retry, message = result.stderr.splitlines()
    assert retry.startswith("download: Kaggle sent nothing for 1 s; retrying in ")
    assert message == (
        "download: error: Kaggle sent nothing for 1 s, 2 times: check the network connection, then "
        "try again; runtime.kaggle in params.yaml sets the waits"
    )
    assert len(server.connections) == 2
    assert elapsed < 2 * 1 + 10  # two stalls of a second, the pause, and Python's start
    assert data_left(workdir) == ["source.json"]


def test_a_broken_kaggle_json_is_named_when_kaggle_is_asked_for(tmp_path):
    home = tmp_path / "home"
    (home / ".kaggle").mkdir(parents=True)
    (home / ".kaggle" / "kaggle.json").write_text("{not json")
    workdir = kaggle_workdir(tmp_path)
    result = run_download(workdir, environment_without_kaggle(home))
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith(
        f"download: error: {home}/.kaggle/kaggle.json: is not valid JSON (line 1, column 2)"
    )
    assert len(result.stderr.splitlines()) == 1
    assert data_left(workdir) == ["source.json"]


def test_the_local_source_copies_the_competition_files_byte_identical(tmp_path, competition_zip):
    local = tmp_path / "input" / "digit-recognizer"
    with zipfile.ZipFile(competition_zip) as archive:
        archive.extractall(local)
    workdir = workdir_for(tmp_path, "local", **{"data.local_dir": str(local)})
    result = run_download(workdir, environment_without_kaggle(tmp_path / "home"))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "download: local data written to data/raw\n"
    sums = dict(line.split()[::-1] for line in (competition_zip.parent / "SHA256SUMS").read_text().splitlines())
    for name in ("train.csv", "test.csv", "sample_submission.csv"):
        assert hashlib.sha256((workdir / "data" / "raw" / name).read_bytes()).hexdigest() == sums[name]
