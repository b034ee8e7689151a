"""The PlugChat client, a request to an :class:`Answer` (never raising for network trouble), and
:func:`classify`, any answer to an outcome, tested apart; retries and rate are ``retrying``'s."""

from __future__ import annotations

import contextlib
import json
import re
import weakref
import zlib
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from batch_attend import sentences
from batch_attend.errors import ConfigError, TokenRefusedError
from batch_attend.i18n import N_, _
from batch_attend.outcomes import ErrorCode, Outcome, RowStatus
from batch_attend.retrying import Backpressure, RetryPolicy, attempt

if TYPE_CHECKING:  # leads imports pandas, which --help and --version must not wait for
    from batch_attend.leads import Lead

DEFAULT_BASE_URL = "https://app.plugchat.com.br/api/integrations"
SNIPPET_CHARS = 120
Scrub = Callable[[str], str]
FRAGMENT = 8  #: the token's pieces this long or longer are masked wherever a server echoes them
START_ANSWER_LIMIT = 64 * 1024  #: an answer to a start is a few bytes; a longer one is not read
LIST_ANSWER_LIMIT = 16 * 1024 * 1024  #: the lists of a large account fit well within this
REUSED: ContextVar[bool] = ContextVar("REUSED", default=False)  #: sent on a connection used before


def endpoint(base_url: str, path: str) -> str:
    """Under the base URL, or on its host for the vendor's other APIs (``/api/...``)."""
    if not path.startswith("/api/"):
        return base_url.rstrip("/") + path
    parts = urlsplit(base_url)
    return f"{parts.scheme}://{parts.netloc}{path}"


def shown_url(url: str) -> str:
    """``url`` as it may be shown: any user name and password in it masked."""
    return re.sub(r"(//)[^/?#]*@", r"\1…@", url, count=1)


def check_base_url(base_url: str) -> str:
    """The base URL without a trailing slash, or a clear error: nothing goes to a URL that is not
    a plain http(s) address, nor with credentials in it (the token goes in a header)."""
    reason = None
    try:
        parts = urlsplit(base_url)
        port = parts.port
    except ValueError as exc:
        parts, reason = None, exc
    if parts is None:
        said = N_("base URL '{base_url}' cannot be read as a URL ({reason})")
    elif parts.scheme not in ("http", "https") or not parts.hostname:
        said = N_("base URL '{base_url}' is not an http(s) URL; the default is {DEFAULT_BASE_URL}")
    elif parts.username is not None or parts.password is not None:
        said = N_(
            "base URL '{base_url}' carries a user name or password; batch-attend sends only "
            "the API token (in the Authorization header): remove them from the URL"
        )
    elif port == 0:
        said = N_("base URL '{base_url}': port 0 is not a port")
    elif parts.query or parts.fragment or base_url.rstrip().endswith(("?", "#")):
        said = N_(
            "base URL '{base_url}' has a query string or fragment; give the address only "
            "(the default is {DEFAULT_BASE_URL})"
        )
    else:
        return base_url.rstrip("/")
    shown = shown_url(base_url)
    said = _(said).format(base_url=shown, DEFAULT_BASE_URL=DEFAULT_BASE_URL, reason=reason)
    raise ConfigError(said)


def check_token(token: str | None) -> str:
    """The token as given (no scheme added or removed), or an error that never shows it."""
    if not token:
        said = N_(
            "no API token: set PLUGCHAT_TOKEN (or pass --token); use --sandbox or --dry-run to try the tool without one"
        )
    elif any(ord(ch) < 32 or ord(ch) == 127 for ch in token):
        said = N_(
            "the API token contains a control character (a stray new line?); it was not sent anywhere"
        )
    else:
        return token
    raise ConfigError(_(said))


@dataclass(slots=True)
class Answer:
    """What came back for one request, or why none came or could be read (``failure``)."""

    http_status: int | None = None
    body: bytes = b""
    content_type: str = ""
    retry_after: str | None = None
    location: str | None = None
    failure: ErrorCode | None = None
    detail: str = ""
    resent: bool = False  # sent twice: the first on a pooled connection found closed

    def json(self):
        """The JSON of a 200 answer read whole, or None."""
        if self.http_status == 200 and self.failure is None:
            with contextlib.suppress(ValueError):
                return json.loads(self.body)
        return None

    def why_unread(self) -> str:
        return self.detail if self.failure is not None else f"HTTP {self.http_status}"

    @property
    def may_have_acted(self) -> bool:
        """The API may have acted although the answer does not say so: none came, or not HTTP,
        or a 5xx (a proxy's may stand in front of a start that went through), or it was resent."""
        return self.resent or self.failure in _UNANSWERED or (self.http_status or 0) >= 500


_UNANSWERED = (ErrorCode.TIMEOUT, ErrorCode.CONNECTION_LOST, ErrorCode.MALFORMED)
Reader = Callable[[Answer, object, Scrub], Outcome]  # what a 2xx answer's JSON says


def _snippet(body: bytes, scrub: Scrub) -> str:
    """The start of an answer, to show: scrubbed whole first, so no cut splits the token."""
    text = " ".join(scrub(body.decode("utf-8", "replace")).split())
    return text[:SNIPPET_CHARS] + ("…" if len(text) > SNIPPET_CHARS else "")


def _looks_like_html(answer: Answer) -> bool:
    head = answer.body[:200].lstrip().lower()
    return "html" in answer.content_type.lower() or head.startswith((b"<!doctype", b"<html"))


def _failed(answer: Answer, code: ErrorCode, message: str, scrub: Scrub | None = None) -> Outcome:
    """A failed outcome; with ``scrub``, its message shows the status and the body's start."""
    if scrub is not None:
        message = message.format(status=answer.http_status, snippet=_snippet(answer.body, scrub))
    return Outcome(
        RowStatus.FAILED, http_status=answer.http_status, error_code=code, error_message=message
    )


def read_start(answer: Answer, data, scrub: Scrub) -> Outcome:
    """A start's 2xx answer (``data``, its JSON): ``true``, ``false``, or "already in service"."""
    if data is True:
        return Outcome(RowStatus.STARTED, http_status=answer.http_status)
    if data is False:
        return _failed(answer, ErrorCode.NOT_STARTED, sentences.ANSWERED_FALSE)
    if isinstance(data, dict) and data.get("status") == "progress":
        operators = data.get("operators")
        ids = tuple(
            scrub(str(op["id"]))
            for op in (operators if isinstance(operators, list) else [])
            if isinstance(op, dict) and op.get("id") is not None
        )
        number = data.get("attendanceNumber")
        return Outcome(
            RowStatus.ALREADY_IN_SERVICE,
            http_status=answer.http_status,
            attendance_number="" if number is None else scrub(str(number)),
            operators=ids,
        )
    return _failed(answer, ErrorCode.UNEXPECTED_RESPONSE, sentences.UNKNOWN_SHAPE, scrub)


def read_finish(answer: Answer, data, scrub: Scrub) -> Outcome:
    """A 2xx answer to a finish: ``{"success": true, "chatFounded": true}`` ended the
    attendance; ``chatFounded: false``, there was none left to end (``undone`` all the same)."""
    found = (
        data.get("chatFounded") if isinstance(data, dict) and data.get("success") is True else None
    )
    if found not in (True, False):
        return _failed(answer, ErrorCode.UNEXPECTED_RESPONSE, sentences.UNKNOWN_SHAPE, scrub)
    outcome = Outcome(RowStatus.UNDONE, http_status=answer.http_status)
    if found is False:
        outcome.error_code = ErrorCode.NOTHING_TO_FINISH
        outcome.error_message = sentences.NOTHING_TO_FINISH
    return outcome


#: A status's error code and sentence, and the sentence that shows its body when it has one.
_STATUS_CODES = {
    400: (ErrorCode.BAD_REQUEST, sentences.BAD_REQUEST, sentences.BAD_REQUEST_ANSWER),
    401: (ErrorCode.UNAUTHORIZED, sentences.TOKEN_REFUSED, None),
    403: (ErrorCode.FORBIDDEN, sentences.FORBIDDEN, None),
    404: (ErrorCode.NOT_FOUND, sentences.NOT_FOUND, None),
    405: (ErrorCode.METHOD_NOT_ALLOWED, sentences.METHOD_NOT_ALLOWED, None),
    415: (ErrorCode.UNSUPPORTED_MEDIA_TYPE, sentences.UNSUPPORTED_MEDIA_TYPE, None),
    422: (ErrorCode.BAD_REQUEST, sentences.UNPROCESSABLE, sentences.UNPROCESSABLE_ANSWER),
    429: (ErrorCode.RATE_LIMITED, sentences.SLOW_DOWN, None),
}


def classify(answer: Answer, scrub: Scrub = str, read: Reader = read_start) -> Outcome:
    """Any answer as an outcome, every text taken from it scrubbed; ``read`` judges a 2xx answer's
    JSON (every other answer means the same whatever was asked). Never raises."""
    if answer.failure is not None:
        return _failed(answer, answer.failure, answer.detail or answer.failure.replace("_", " "))
    status = answer.http_status or 0
    if 200 <= status < 300:
        if not answer.body.strip():
            return _failed(answer, ErrorCode.UNEXPECTED_RESPONSE, sentences.EMPTY_BODY)
        if _looks_like_html(answer):
            return _failed(answer, ErrorCode.UNEXPECTED_RESPONSE, sentences.HTML_PAGE)
        try:  # numbers as written: an attendance number is text, and 1e999 must not become inf
            data = json.loads(answer.body, parse_int=str, parse_float=str, parse_constant=str)
        except ValueError:
            return _failed(answer, ErrorCode.UNEXPECTED_RESPONSE, sentences.NOT_JSON, scrub)
        return read(answer, data, scrub)
    if status in _STATUS_CODES:
        code, message, with_body = _STATUS_CODES[status]
        if with_body and answer.body:
            message = with_body.format(status=status, snippet=_snippet(answer.body, scrub))
        outcome = _failed(answer, code, message)
        if status == 401:
            outcome.status = RowStatus.SKIPPED
        return outcome
    if 300 <= status < 400:
        said = sentences.REDIRECTED_TO if answer.location else sentences.REDIRECTED
        return _failed(answer, ErrorCode.UNEXPECTED_REDIRECT, said.format(location=answer.location))
    if status >= 500:
        page = _looks_like_html(answer)
        message = sentences.SERVER_ERROR_PAGE if page else sentences.SERVER_ERROR
        return _failed(answer, ErrorCode.SERVER_ERROR, message.format(status=status))
    said = sentences.OTHER_STATUS_WITH if answer.body else sentences.OTHER_STATUS
    return _failed(answer, ErrorCode.CLIENT_ERROR, said, scrub)


class PlugChatClient:
    """One aiohttp session per run (``async with``), its pool sized to the run's concurrency; the
    token goes in the ``Authorization`` header only, and what is kept of an answer is scrubbed."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float = 30.0,
        concurrency: int = 8,
        rate: float | None = None,
        policy: RetryPolicy | None = None,
    ) -> None:
        self.base_url = check_base_url(base_url)
        self.policy = policy or RetryPolicy()
        self.gate = Backpressure(concurrency, rate)  # the run's: every request passes it
        self._token = check_token(token)
        raw = self._token.encode()
        n = min(FRAGMENT, len(raw))
        self._pieces = sorted({raw[i : i + n] for i in range(len(raw) - n + 1)})
        self._pattern = re.compile(b"(?=(" + b"|".join(map(re.escape, self._pieces)) + b"))")
        self._timeout = timeout
        self._session = self._fresh = None  # the pooled connections; a new one each time

    async def __aenter__(self) -> PlugChatClient:
        import aiohttp

        used: weakref.WeakSet = weakref.WeakSet()

        class Pool(aiohttp.TCPConnector):
            async def connect(self, req, traces, timeout):
                REUSED.set(False)  # until a connection is given: one refused was never used
                conn = await super().connect(req, traces, timeout)
                REUSED.set(conn.protocol in used)
                if not REUSED.get():
                    used.add(conn.protocol)
                return conn

        limit = self.gate.concurrency
        self._session = self._open(Pool(limit=limit, limit_per_host=limit, ttl_dns_cache=300))
        return self

    def _open(self, connector):
        import aiohttp

        return aiohttp.ClientSession(
            connector=connector,
            # One deadline per request: what --timeout promises, an answer within so many seconds.
            timeout=aiohttp.ClientTimeout(total=self._timeout, sock_connect=self._timeout),
            headers={"Authorization": self._token, "Accept-Encoding": "identity"},
            skip_auto_headers=("User-Agent",),
            raise_for_status=False,
            auto_decompress=False,  # inflated here, within the limit
        )

    async def __aexit__(self, *exc_info) -> None:
        for session in (self._session, self._fresh):
            if session is not None:
                await session.close()
        self._session = self._fresh = None

    def scrub(self, text: str) -> str:
        """``text`` with every piece of the token of ``FRAGMENT`` bytes or more masked (a server
        may echo the Authorization header cut short, or split)."""
        data = text.encode("utf-8", "surrogateescape")
        if not any(piece in data for piece in self._pieces):  # the usual case, at C speed
            return text
        out, last = [], 0  # the pieces kept, and where the last masked span ends
        for match in self._pattern.finditer(data):  # in order, each piece as long: spans merge
            if not out or match.start() > last:
                out += [data[last : match.start()], b"[token]"]
            last = match.start() + len(match.group(1))
        return b"".join([*out, data[last:]]).decode("utf-8", "surrogateescape")

    async def start_attendance(self, lead: Lead) -> Answer:
        url = endpoint(self.base_url, "/start-attendance")
        return await self.request("POST", url, body=lead.body(), limit=START_ANSWER_LIMIT)

    async def finish_attendance(self, lead: Lead, auto_transfer: bool) -> Answer:
        """End the attendance of ``lead.phone``, as its first operator."""
        body = {"phone": lead.phone, "operatorId": lead.operators[0], "autoTransfer": auto_transfer}
        url = endpoint(self.base_url, "/finish-attendance")
        return await self.request("POST", url, body=body, limit=START_ANSWER_LIMIT)

    async def get(
        self, path: str, asking: str, *, headers: dict | None = None, limit: int = LIST_ANSWER_LIMIT
    ) -> Answer:
        """A GET of an ``endpoint`` path, tried again as a start is; a refused token raises
        :class:`TokenRefusedError`, saying what was being ``asking`` (catalog words)."""
        url = endpoint(self.base_url, path)
        answer = await attempt(
            self.gate, self.policy, lambda: self.request("GET", url, headers=headers, limit=limit)
        )
        if answer.http_status == 401:
            said = _("the API refused the token (HTTP 401) when {asking}")
            raise TokenRefusedError(said.format(asking=_(asking)))
        return answer

    async def request(
        self,
        method: str,
        url: str,
        *,
        body: dict | None = None,
        headers: dict | None = None,
        limit: int = LIST_ANSWER_LIMIT,
        session=None,
    ) -> Answer:
        """One request, reading at most ``limit`` bytes of the answer; never raises for network
        trouble."""
        import aiohttp

        try:
            async with (session or self._session).request(
                method, url, json=body, headers=headers, allow_redirects=False
            ) as resp:
                answer = Answer(
                    http_status=resp.status,
                    content_type=resp.headers.get("Content-Type", ""),  # judged, never shown
                    retry_after=resp.headers.get("Retry-After"),
                    location=self.scrub(loc) if (loc := resp.headers.get("Location")) else None,
                )
                try:
                    answer.body = await _read_body(resp, limit)
                except _Unreadable as exc:  # a status other than 2xx says enough without it
                    if 200 <= resp.status < 300:
                        answer.failure, answer.detail = ErrorCode.UNEXPECTED_RESPONSE, str(exc)
                return answer
        except (TimeoutError, aiohttp.ClientError, ConnectionError) as exc:
            closed = isinstance(exc, aiohttp.ClientOSError) or (
                # a message that is not text is the part of an answer that came
                isinstance(exc, aiohttp.ServerDisconnectedError) and isinstance(exc.message, str)
            )
            if not (closed and session is None and method == "POST" and REUSED.get()):
                return self._failed(exc)
        # Sent on a pooled connection the server had closed meanwhile: sent again at once on a
        # new one, as browsers do, with no retry spent; ``resent``, as the first may have acted.
        if self._fresh is None:
            self._fresh = self._open(aiohttp.TCPConnector(force_close=True))
        answer = await self.request(
            method, url, body=body, headers=headers, limit=limit, session=self._fresh
        )
        answer.resent = True
        return answer

    def _failed(self, exc: Exception) -> Answer:
        import aiohttp

        code, reason = ErrorCode.CONNECTION_LOST, type(exc).__name__
        if isinstance(exc, aiohttp.ConnectionTimeoutError):
            code, sentence = ErrorCode.CONNECTION_ERROR, sentences.CONNECT_TIMEOUT
        elif isinstance(exc, TimeoutError):
            code, sentence = ErrorCode.TIMEOUT, sentences.ANSWER_TIMEOUT
        elif isinstance(exc, aiohttp.ClientConnectorError):
            code, sentence = ErrorCode.CONNECTION_ERROR, sentences.CANNOT_CONNECT
            reason = exc.os_error.strerror or exc
        elif isinstance(exc, aiohttp.ClientResponseError):  # the parser's own 400, no server's
            code, sentence, reason = ErrorCode.MALFORMED, sentences.NOT_HTTP, exc.message
        elif isinstance(
            exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError | ConnectionError
        ):
            sentence = sentences.CONNECTION_CLOSED
        else:
            sentence, reason = sentences.REQUEST_FAILED, f"{type(exc).__name__}: {exc}"
        said = sentence.format(seconds=f"{self._timeout:g}", reason=reason)
        return Answer(failure=code, detail=self.scrub(said))


class _Unreadable(Exception):
    """An answer too large to read, or compressed in a way that was not asked for."""


async def _read_body(resp, limit: int) -> bytes:
    """The answer's body, inflated; :class:`_Unreadable` past ``limit`` bytes read or inflated."""
    if resp.content_length is not None and resp.content_length > limit:
        raise _too_large(limit)
    data = bytearray()
    while len(data) <= limit and (chunk := await resp.content.read(limit + 1 - len(data))):
        data += chunk
    if len(data) > limit:
        raise _too_large(limit)
    encoding = resp.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding in ("", "identity"):
        return bytes(data)
    wbits = {"gzip": 31, "x-gzip": 31, "deflate": 15}.get(encoding)
    if wbits is None:
        raise _Unreadable(sentences.COMPRESSED.format(encoding=encoding[:40]))
    try:
        inflater = zlib.decompressobj(wbits)
        body = inflater.decompress(bytes(data), limit + 1)
    except zlib.error as exc:
        raise _Unreadable(sentences.NOT_INFLATED.format(encoding=encoding, reason=exc)) from None
    if len(body) > limit or inflater.unconsumed_tail:
        raise _too_large(limit)
    return body


def _too_large(limit: int) -> _Unreadable:
    return _Unreadable(sentences.TOO_LARGE.format(size=limit // 1024))
