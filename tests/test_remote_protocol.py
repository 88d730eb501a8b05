"""The protocol every remote speaks (bulkctl.send.remote): capabilities, auth, rate limits."""

from __future__ import annotations

import base64
import gzip
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from bulkctl.errors import CredentialsError
from bulkctl.pack.parts import Part
from bulkctl.send.caller import Caller
from bulkctl.send.http import Auth, RequestSpec, build_client
from bulkctl.send.remote import JobsRemote, SendResult, SessionRemote, is_atomic
from bulkctl.send.retry import RetryEvent, RetryPolicy
from bulkctl.send.session import run_session
from bulkctl.settings import Secret
from bulkctl.targets.segment_bulk import SegmentBulkRemote
from bulkctl.targets.xandr_remote import XandrLogin, XandrRemote


def test_capabilities_are_told_by_the_steps_a_remote_has() -> None:
    """A Segment Bulk session is an atomic session remote; Xandr's jobs remote has no session."""
    segment = SegmentBulkRemote("https://h", Secret("k"))
    xandr = XandrRemote("https://h", XandrLogin("u", Secret("p")), 1)
    assert isinstance(segment, SessionRemote) and not isinstance(segment, JobsRemote)
    assert isinstance(xandr, JobsRemote) and not isinstance(xandr, SessionRemote)
    assert is_atomic(segment) and not is_atomic(xandr)


def test_a_header_auth_travels_in_its_own_header(httpserver: HTTPServer) -> None:
    """`header` auth sends the secret as that header's value and no Authorization."""
    httpserver.expect_request("/x").respond_with_data("ok")
    with build_client(Auth(Secret("k-123"), "header", "api-key")) as client:
        assert client.get(httpserver.url_for("/x")).status_code == 200
    request = httpserver.log[0][0]
    assert request.headers.get("api-key") == "k-123"
    assert "Authorization" not in request.headers


def test_basic_user_auth_is_the_key_and_an_empty_password(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/x").respond_with_data("ok")
    with build_client(Auth(Secret("wk_1"), "basic_user")) as client:
        client.get(httpserver.url_for("/x"))
    expected = "Basic " + base64.b64encode(b"wk_1:").decode()
    assert httpserver.log[0][0].headers["Authorization"] == expected


@pytest.mark.parametrize(
    ("secret", "scheme", "words"),
    [
        ("", "header", "is empty"),
        ("a b", "header", "whitespace"),
        ("a\nb", "basic_user", "whitespace"),
        ("a:b", "basic_user", "':'"),
    ],
)
def test_a_secret_that_cannot_travel_is_refused_before_any_request(
    secret: str, scheme: Any, words: str
) -> None:
    with pytest.raises(CredentialsError) as caught:
        build_client(Auth(Secret(secret), scheme, "api-key", what="Brevo API key"))
    assert words in str(caught.value)
    if secret:
        assert secret not in str(caught.value)


def test_the_remotes_own_rate_limit_header_sets_the_wait(httpserver: HTTPServer) -> None:
    """A 429 with only `x-sib-ratelimit-reset` waits what it says when the remote names it."""
    answers = iter(
        [Response("slow down", status=429, headers={"x-sib-ratelimit-reset": "0"}), Response("ok")]
    )
    httpserver.expect_request("/r").respond_with_handler(lambda request: next(answers))
    seen: list[RetryEvent] = []
    with build_client(None) as client:
        caller = Caller(
            client,
            RetryPolicy(max_attempts=2),
            on_retry=seen.append,
            wait_headers=("x-sib-ratelimit-reset", "retry-after"),
        )
        reply = caller.bind()(RequestSpec("probe", "GET", httpserver.url_for("/r")))
    assert reply.status_code == 200
    assert [event.retry_after for event in seen] == [0.0]


class _OnlySends:
    """A remote with no session: it only sends, and says what the API applied."""

    endpoint = "http://127.0.0.1"
    noun = "request"
    min_interval = 0.0
    auth = None
    rate_limit_headers = ("retry-after",)

    def __init__(self, url: str) -> None:
        self.url = url

    def send(self, call: Any, part: Part) -> SendResult:
        reply = call(RequestSpec(f"part {part.number}", "POST", self.url, body_file=part.path))
        return SendResult(reply.body.decode(), applied=part.records - 1)

    def job_options(self) -> dict[str, Any]:
        return {}


def test_a_remote_without_a_session_is_never_opened_or_closed(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    """The runner only sends to it; each part's SendResult reaches the run's result."""
    httpserver.expect_request("/send", method="POST").respond_with_handler(
        lambda request: Response(f"id-{len(Request.get_data(request))}")
    )
    parts = []
    for number in (1, 2):
        path = tmp_path / f"{number}.gz"
        path.write_bytes(gzip.compress(b"{}\n" * number))
        size = path.stat().st_size
        parts.append(Part(number, number - 1, 0, path, 3, 3 * number, size, "0" * 64))
    with build_client(None) as client:
        result = run_session(client, _OnlySends(httpserver.url_for("/send")), parts)
    assert [entry[0].path for entry in httpserver.log] == ["/send", "/send"]
    assert result.sync_id == result.parts[0].part_id
    assert {number: sent.applied for number, sent in result.sent.items()} == {1: 2, 2: 2}
    assert result.sent[2].remote_id == f"id-{parts[1].bytes_compressed}"
