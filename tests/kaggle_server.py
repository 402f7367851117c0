"""A tiny local stand-in for the Kaggle API, good enough for the real `kaggle` client.

The client is pointed here with KAGGLE_API_ENVIRONMENT=LOCALHOST (it then POSTs JSON to
http://localhost/api/v1/<service>/<Method>) plus HTTP_PROXY=<this server>, so every request
(API calls, the redirected file GET, the upload PUT) arrives here with an absolute URL
in the request line.  See FakeKaggle.client_env().
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections import Counter
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import NamedTuple
from urllib.parse import urlsplit

API_PREFIX = "/api/v1/competitions.CompetitionApiService/"
PUBLIC_HOST = "http://localhost"  # what the client believes it talks to


class Failure(NamedTuple):
    """An error FakeKaggle answers instead; a plain (status, message) tuple is one that never stops."""

    status: int
    message: str
    times: float = math.inf  # how many requests get it; the ones after succeed
    retry_after: str | None = None  # the Retry-After header to send, if any


class Outcome(NamedTuple):
    """How Kaggle judges a submission: what ListSubmissions shows for it once scored."""

    status: str  # "COMPLETE" or "ERROR"
    public_score: str = ""
    error: str = ""  # Kaggle's errorDescription


class FakeKaggle:
    """Fake Kaggle API server.

    failures maps an API method name ("DownloadDataFiles", "StartSubmissionUpload",
    "CreateSubmission", "ListSubmissions", "GetSubmissionLimits") -- or "download" / "upload"
    for the raw file GET / upload PUT -- to the Failure, or (status, message), to answer with instead.
    The file GET honours "Range: bytes=N-", as the storage behind Kaggle does.
    Each CreateSubmission adds a PENDING submission to those ListSubmissions returns, newest first;
    ListSubmissions shows it PENDING pending_polls times, then scored as `outcome` says.
    """

    def __init__(self, zip_bytes: bytes = b""):
        self.zip_bytes = zip_bytes
        self.competition = "digit-recognizer"  # DownloadDataFiles for any other is a 404
        self.failures: dict[str, Failure | tuple[int, str]] = {}
        self.failed: Counter[str] = Counter()  # failures answered, per key
        self.resets: float = 0  # how many file GETs send half their body, then close the connection
        self.file_gets: list[str | None] = []  # the Range header of each file GET; None: the whole file
        self.uploads: list[bytes] = []  # bodies of the upload PUTs, in order
        self.calls: list[str] = []  # API method names, in order
        self.bodies: list[dict] = []  # JSON request bodies, parallel to calls
        self.auth_headers: list[str] = []  # Authorization values seen, any route
        self.submissions: list[dict] = []  # returned by ListSubmissions; PENDING ones get scored
        self.outcome = Outcome("COMPLETE", "0.99123")  # the score the next submission to be scored gets
        self.pending_polls: float = 0  # ListSubmissions calls that see a submission PENDING; math.inf: all
        self._looks: Counter[int] = Counter()  # ListSubmissions calls that saw each submission ref PENDING
        self._file_names: dict[str, str] = {}  # upload token -> the file name StartSubmissionUpload named
        self._tokens: set[str] = set()
        self._created = 0  # successful CreateSubmission calls
        self.daily_limit = 5  # submissions Kaggle takes a day
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------
    def start(self) -> FakeKaggle:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.fake = self
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join()
            self._server = self._thread = None

    def __enter__(self) -> FakeKaggle:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def client_env(self) -> dict[str, str]:
        return {
            "KAGGLE_API_ENVIRONMENT": "LOCALHOST",
            "HTTP_PROXY": self.url,
            "http_proxy": self.url,
            "NO_PROXY": "",
            "no_proxy": "",
            "KAGGLE_USERNAME": "fake-user",
            "KAGGLE_KEY": "fake-key-0123456789abcdef",
        }

    # -- API methods: request dict -> response dict --------------------------
    def _api(self, method: str, body: dict) -> tuple[int, dict]:
        if method == "StartSubmissionUpload":
            token = f"blob-{len(self._tokens) + 1}"
            self._tokens.add(token)
            self._file_names[token] = body.get("fileName", "")
            return 200, {"token": token, "createUrl": f"{PUBLIC_HOST}/upload/{token}"}
        if method == "CreateSubmission":
            if body.get("blobFileTokens") not in self._tokens:
                return 400, {"code": 400, "message": "Unknown blobFileTokens"}
            self._created += 1
            ref = 1000 + self._created
            now = datetime.now(UTC).replace(tzinfo=None)
            self.submissions.insert(
                0,
                {
                    "ref": ref,
                    "date": now.isoformat(timespec="milliseconds") + "Z",
                    "description": body.get("submissionDescription", ""),
                    "fileName": self._file_names[body["blobFileTokens"]],
                    "status": "PENDING",
                },
            )
            return 200, {"message": "Successfully submitted to Digit Recognizer", "ref": ref}
        if method == "ListSubmissions":
            for submission in self.submissions:
                self._look_at(submission)
            return 200, {"submissions": self.submissions, "nextPageToken": ""}
        if method == "GetSubmissionLimits":
            return 200, {
                "numToday": self._created,
                "numTotal": len(self.submissions),
                "numAllowedNow": max(0, self.daily_limit - self._created),
                "limitedByTotal": False,
            }
        return 404, {"code": 404, "message": f"Unknown method {method}"}

    def _look_at(self, submission: dict) -> None:
        """Count one ListSubmissions call that sees `submission`; score it if it has been PENDING long enough."""
        if submission["status"] != "PENDING":
            return
        self._looks[submission["ref"]] += 1
        if self._looks[submission["ref"]] > self.pending_polls:
            # Kaggle leaves out empty fields.
            scored = {
                "status": self.outcome.status,
                "publicScore": self.outcome.public_score,
                "errorDescription": self.outcome.error,
            }
            submission.update({name: value for name, value in scored.items() if value})


class _Handler(BaseHTTPRequestHandler):
    server_version = "FakeKaggle/1.0"

    def log_message(self, *args) -> None:  # keep test output quiet
        pass

    @property
    def fake(self) -> FakeKaggle:
        return self.server.fake

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while size := int(self.rfile.readline().split(b";")[0], 16):
                data += self.rfile.read(size)
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return data
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _send(self, status: int, body: bytes, content_type: str, sent: int | None = None, **headers: str) -> None:
        """Answer with body, of which only the first `sent` bytes when given (the client is promised all)."""
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body[:sent])

    def _json(self, status: int, obj: dict, **headers: str) -> None:
        self._send(status, json.dumps(obj).encode(), "application/json", **headers)

    def _route(self) -> tuple[str, str]:
        """(path, failure key) for this request; accepts absolute (proxy) and relative forms."""
        path = urlsplit(self.path).path
        if self.headers.get("Authorization"):
            self.fake.auth_headers.append(self.headers["Authorization"])
        if path.startswith(API_PREFIX):
            return path, path[len(API_PREFIX) :]
        return path, path.split("/")[1] if path.startswith(("/files/", "/upload/")) else ""

    def _failed(self, key: str) -> bool:
        if key not in self.fake.failures:
            return False
        failure = Failure(*self.fake.failures[key])
        if self.fake.failed[key] >= failure.times:
            return False
        self.fake.failed[key] += 1
        headers = {"Retry-After": failure.retry_after} if failure.retry_after is not None else {}
        self._json(failure.status, {"code": failure.status, "message": failure.message}, **headers)
        return True

    def do_POST(self) -> None:
        path, method = self._route()
        raw = self._body()
        if not path.startswith(API_PREFIX):
            return self._json(404, {"code": 404, "message": f"No route for POST {path}"})
        self.fake.calls.append(method)
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {}
        self.fake.bodies.append(body)
        if self._failed(method):
            return
        if method in ("DownloadDataFiles", "DownloadDataFile"):
            name = body.get("competitionName", "competition")
            if name != self.fake.competition:
                return self._json(404, {"code": 404, "message": "Competition not found"})
            return self._send(302, b"", "text/plain", Location=f"{PUBLIC_HOST}/files/{name}.zip")
        self._json(*self.fake._api(method, body))

    def do_GET(self) -> None:
        path, key = self._route()
        if key != "files":
            return self._json(404, {"code": 404, "message": f"No route for GET {path}"})
        if self.command == "GET":
            self.fake.file_gets.append(self.headers.get("Range"))
        if self._failed("download"):
            return
        size = len(self.fake.zip_bytes)
        start = int(match[1]) if (match := re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", ""))) else 0
        status, headers = (206, {"Content-Range": f"bytes {start}-{size - 1}/{size}"}) if start else (200, {})
        body = self.fake.zip_bytes[start:]
        sent = None
        if self.command == "GET" and self.fake.resets > 0:
            self.fake.resets -= 1
            sent = len(body) // 2
            self.close_connection = True  # after half the promised bytes: the client reads a broken body
        self._send(status, body, "application/zip", sent=sent, **headers)

    do_HEAD = do_GET

    def do_PUT(self) -> None:
        path, key = self._route()
        data = self._body()
        if key != "upload":
            return self._json(404, {"code": 404, "message": f"No route for PUT {path}"})
        if not self._failed("upload"):
            self.fake.uploads.append(data)
            self._json(200, {})
