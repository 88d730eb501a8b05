"""The HTTP client, and the one way a request is sent: httpx timeouts plus a total deadline.

httpx bounds each network operation (connect 10 s, read/write/pool 60 s), but a peer that
trickles a response one byte at a time never trips a per-read timeout. So every request also
gets a total deadline, checked between the chunks of the request body (sent from a generator)
and between the chunks of the response body (read with `client.stream`). The per-operation
timeouts are shrunk to the deadline so a silent peer cannot outlast it either. One limit
remains: response *headers* trickled byte by byte are bounded only per read.

Lower-layer errors are translated here: retryable ones into `RetryableFailure`, the rest into
the bulkctl error tree. Secrets stay out of messages: URLs are redacted before they are shown.
"""

from __future__ import annotations

import base64
import functools
import ipaddress
import os
import ssl
import time
from collections.abc import Callable, Generator, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Literal
from urllib.parse import urlsplit

import httpx

from bulkctl import __version__
from bulkctl.errors import (
    ApiError,
    BulkctlError,
    CredentialsError,
    InterruptedError_,
    UsageError,
)
from bulkctl.redact import redact_url
from bulkctl.send.inflight import MAX_IN_FLIGHT
from bulkctl.send.retry import Failure, RetryableFailure, classify_transport_error, does_not_resolve

if TYPE_CHECKING:
    from bulkctl.settings import Secret

DEFAULT_TIMEOUT = httpx.Timeout(connect=10.0, read=60.0, write=60.0, pool=60.0)
BODY_CHUNK = 64 * 1024  # small enough that a stop request is noticed promptly
MAX_REPLY_BYTES = 64 * 1024  # the API answers with tiny JSON; never buffer more than this


ANSWER_TIMEOUT_ENV = "BULKCTL_ANSWER_TIMEOUT"


@dataclass(frozen=True)
class Auth:
    """How every request of a remote proves who it is, declared by the remote.

    `basic_user`: HTTP Basic with the secret as user name and an empty password (Segment);
    `header`: the secret as the value of header `name` (e.g. Brevo's `api-key`). The secret
    is also what the in-flight limit shared between processes is keyed by.
    """

    secret: Secret
    scheme: Literal["basic_user", "header"] = "basic_user"
    name: str = "Authorization"
    what: str = "key"  # how messages name the secret: "write key", "Brevo API key"

    def headers(self) -> dict[str, str]:
        """The header to send; built at the moment of sending, never stored or logged."""
        value = self.secret.reveal()
        if self.scheme == "basic_user":
            token = base64.b64encode(f"{value}:".encode()).decode("ascii")
            return {"Authorization": f"Basic {token}"}
        return {self.name: value}

    def check(self) -> None:
        """A CredentialsError for a secret that cannot travel in its header."""
        value = self.secret.reveal()
        if not value:
            raise CredentialsError(f"the {self.what} is empty")
        if any(ch.isspace() or not ch.isprintable() for ch in value):
            raise CredentialsError(
                f"the {self.what} contains whitespace or a control character, which an HTTP "
                "header cannot carry",
                hint="check the file or variable it came from",
            )
        if self.scheme == "basic_user" and ":" in value:
            raise CredentialsError(
                f"the {self.what} contains ':', which HTTP Basic auth cannot carry as a user name",
                hint="check the file or variable it came from",
            )


class _HeaderAuth(httpx.Auth):
    """Adds a remote's auth header to each request as it is sent (never kept in the client)."""

    def __init__(self, auth: Auth) -> None:
        self._auth = auth

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers.update(self._auth.headers())
        yield request


@dataclass(frozen=True, slots=True)
class Deadlines:
    """Total seconds one request may take, from sending its first byte to its last answer byte.

    Control requests (start, finish, keep-alive) get `control`; an upload gets the time its
    bytes need at `upload_rate` bytes/s (the slowest link we accept), but never less than
    `upload_min`, plus the wait for its answer. The answer to a request may take `answer`
    seconds once it is sent; an upload's, `answer` plus its size at `answer_rate` bytes/s,
    since the server reads, inflates and checks the whole part before it answers (a 263 MB
    part gets 5 minutes, not 60 s).
    """

    control: float = 60.0
    upload_min: float = 120.0
    upload_rate: float = 256_000.0
    answer: float = 60.0
    answer_rate: float = 1_000_000.0

    @classmethod
    def from_env(cls) -> Deadlines:
        """`BULKCTL_ANSWER_TIMEOUT` (seconds) replaces `answer`: for tests and slow APIs."""
        text = os.environ.get(ANSWER_TIMEOUT_ENV, "").strip()
        if not text:
            return cls()
        try:
            seconds = float(text)
        except ValueError:
            seconds = -1.0
        if not 0 < seconds < float("inf"):
            raise UsageError(f"{ANSWER_TIMEOUT_ENV}={text!r}: give a number of seconds above 0")
        return cls(answer=seconds)

    def upload(self, size: int) -> float:
        """Deadline for uploading `size` bytes and getting the answer."""
        return max(self.upload_min, size / self.upload_rate) + self.answer_for(size)

    def answer_for(self, size: int | None) -> float:
        """Seconds the answer may take once a request of `size` body bytes is sent."""
        return self.answer + (size or 0) / self.answer_rate


@dataclass(frozen=True, slots=True)
class RequestSpec:
    """One request to make, built by a target: pure data, no I/O."""

    label: str  # how messages name it, e.g. "upload of part 3"
    method: str
    url: str
    headers: tuple[tuple[str, str], ...] = ()
    content: bytes = b""
    body_file: Path | None = None  # sent instead of `content`, re-read on every attempt
    carries_data: bool = False  # records in `content`: under the adaptive upload limit too


@dataclass(frozen=True, slots=True)
class Reply:
    """What came back: status, headers and at most `MAX_REPLY_BYTES` of the body."""

    status_code: int
    headers: httpx.Headers
    body: bytes


def build_client(
    auth: Auth | None,
    *,
    timeout: httpx.Timeout = DEFAULT_TIMEOUT,
    verify: ssl.SSLContext | bool = True,
    transport: httpx.BaseTransport | None = None,
) -> httpx.Client:
    """An httpx client: the remote's `auth` on every request, no redirects, ≤ 20 connections.

    `auth` None: no client-wide authentication (an API that sends a token per request puts
    it in each request's headers).
    """
    client_auth: httpx.Auth | None = None
    if auth is not None:
        auth.check()
        client_auth = _HeaderAuth(auth)
    return httpx.Client(
        auth=client_auth,
        headers={"User-Agent": f"bulkctl/{__version__}"},
        timeout=timeout,
        follow_redirects=False,
        limits=httpx.Limits(max_connections=MAX_IN_FLIGHT, max_keepalive_connections=MAX_IN_FLIGHT),
        verify=verify,
        transport=transport,
    )


def is_loopback_host(host: str) -> bool:
    """True for `localhost`, 127.0.0.0/8 and ::1 (also IPv4-mapped): traffic never leaves."""
    name = host.strip("[]").rstrip(".").lower()
    if name == "localhost":
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def check_endpoint(url: str, *, allow_insecure_http: bool = False) -> None:
    """Refuse a URL that is not http(s), or plain http to a host that is not loopback."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - validates the port
    except ValueError:
        raise UsageError(f"--endpoint {redact_url(url)} is not a valid URL") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not host:
        raise UsageError(
            f"--endpoint {redact_url(url)} is not an http:// or https:// URL with a host"
        )
    if scheme == "http" and not allow_insecure_http and not is_loopback_host(host):
        raise UsageError(
            f"refusing plain http:// to {host}: the credentials (a write key in the HTTP Basic "
            "auth header, a password or a token) would travel in clear text",
            hint="use https://, or pass --allow-insecure-http to send it anyway",
        )


class _DeadlineExceeded(Exception):
    """Internal: the total deadline passed; `body_sent` says whether the request was complete."""

    def __init__(self, *, body_sent: bool) -> None:
        super().__init__("deadline exceeded")
        self.body_sent = body_sent


def _never() -> bool:
    return False


def send(
    client: httpx.Client,
    spec: RequestSpec,
    *,
    deadline_s: float,
    stopped: Callable[[], bool] = _never,
    on_progress: Callable[[int], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    answer_s: float | None = None,
) -> Reply:
    """Make one attempt of `spec` within `deadline_s` seconds and return whatever status came.

    Raises `RetryableFailure` for a network failure worth retrying (or the deadline), a
    `BulkctlError` for one that is not, and `InterruptedError_` when `stopped()` turns true
    while the body is being sent. `on_progress` gets the body bytes sent so far; `answer_s`
    bounds the wait for the answer once the body is sent (default: the client's read timeout).
    """
    deadline = clock() + deadline_s
    body = _Body()
    with ExitStack() as stack:
        content: bytes | Iterator[bytes] = spec.content
        if spec.body_file is not None:
            try:
                handle = stack.enter_context(spec.body_file.open("rb"))
            except OSError as exc:
                raise BulkctlError(f"cannot read {spec.body_file}: {exc.strerror}") from None
            content = _chunks(handle, spec.body_file, deadline, stopped, on_progress, clock, body)
        try:
            with client.stream(
                spec.method,
                spec.url,
                headers=list(spec.headers),
                content=content,
                timeout=_within(_timeouts(client.timeout), deadline_s, answer_s),
            ) as response:
                data = _read_reply(response, deadline, clock)
                return Reply(response.status_code, response.headers, data)
        except _DeadlineExceeded as exc:
            failure = Failure(
                reason=f"no complete answer from {host_of(spec.url)} within the deadline of "
                f"{deadline_s:g} s",
                maybe_applied=exc.body_sent,
                may_land_later=exc.body_sent,
            )
            raise RetryableFailure(failure) from None
        except httpx.TransportError as exc:
            sent = body.complete if spec.body_file is not None else None
            transient = classify_transport_error(exc, host_of(spec.url), body_sent=sent)
            if transient is None:
                raise _fatal_transport_error(exc, spec) from None
            raise RetryableFailure(transient) from None
        except httpx.DecodingError as exc:
            raise ApiError(f"{spec.label}: the answer could not be decoded ({exc})") from None


def host_of(url: str) -> str:
    """`host:port` of a URL, for messages (never its user info or query)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return redact_url(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if port is None:
        port = 443 if parts.scheme.lower() == "https" else 80
    return f"{host}:{port}"


class _Body:
    """Whether the whole request body went out: a body cut short cannot be applied."""

    complete = False


def _timeouts(timeout: httpx.Timeout) -> tuple[float | None, ...]:
    return (timeout.connect, timeout.read, timeout.write, timeout.pool)


@functools.lru_cache(maxsize=64)
def _within(
    timeouts: tuple[float | None, ...], seconds: float, answer: float | None = None
) -> httpx.Timeout:
    """The client's timeouts capped at `seconds` (cached: most requests share one)."""

    def cap(value: float | None) -> float:
        return seconds if value is None else min(value, seconds)

    connect, read, write, pool = timeouts
    return httpx.Timeout(
        connect=cap(connect),
        read=cap(read if answer is None else answer),
        write=cap(write),
        pool=cap(pool),
    )


def _chunks(
    handle: BinaryIO,
    path: Path,
    deadline: float,
    stopped: Callable[[], bool],
    on_progress: Callable[[int], None] | None,
    clock: Callable[[], float],
    body: _Body,
) -> Iterator[bytes]:
    sent = 0
    while True:
        if stopped():
            raise InterruptedError_("interrupted")
        if clock() > deadline:
            raise _DeadlineExceeded(body_sent=False)
        try:
            chunk = handle.read(BODY_CHUNK)
        except OSError as exc:
            raise BulkctlError(f"cannot read {path}: {exc.strerror}") from None
        if not chunk:
            body.complete = True
            return
        yield chunk
        sent += len(chunk)
        if on_progress is not None:
            on_progress(sent)


def _read_reply(response: httpx.Response, deadline: float, clock: Callable[[], float]) -> bytes:
    kept = bytearray()
    for chunk in response.iter_bytes():
        if clock() > deadline:
            raise _DeadlineExceeded(body_sent=True)
        kept += chunk[: MAX_REPLY_BYTES - len(kept)]
        if len(kept) >= MAX_REPLY_BYTES:
            break  # closing early drops the connection, which is fine
    return bytes(kept)


def _fatal_transport_error(exc: httpx.TransportError, spec: RequestSpec) -> BulkctlError:
    host = urlsplit(spec.url).hostname or redact_url(spec.url)
    if isinstance(exc, httpx.ConnectError) and does_not_resolve(exc):
        return ApiError(
            f"{spec.label}: the host name {host} does not resolve ({exc}); not retried",
            hint="check --endpoint (or BULKCTL_ENDPOINT, the profile's endpoint) and DNS",
        )
    if isinstance(exc, httpx.ConnectError):
        return ApiError(
            f"{spec.label}: the TLS certificate of {host} could not be verified ({exc})",
            hint="check --endpoint; behind a TLS-inspecting proxy set SSL_CERT_FILE to its CA",
        )
    if isinstance(exc, httpx.UnsupportedProtocol):
        return UsageError(f"{redact_url(spec.url)} is not an http:// or https:// URL")
    return ApiError(f"{spec.label} to {host_of(spec.url)} failed: {type(exc).__name__}: {exc}")
