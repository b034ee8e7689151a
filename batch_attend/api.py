"""The PlugChat client: one request per lead, and the classification of every possible answer.

The HTTP seam is deliberately small: :meth:`PlugChatClient.start_attendance` turns a lead into an
:class:`Answer` (never raises for network trouble), and the pure function :func:`classify` turns any
answer into an :class:`~batch_attend.outcomes.Outcome`. Retries, rate and concurrency live in the
runner, so both halves are tested on their own.

aiohttp is the transport (the README says why, with figures): one session per run, its
connection pool sized to the run's concurrency.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from batch_attend.errors import BatchAttendError
from batch_attend.i18n import _
from batch_attend.outcomes import ErrorCode, Outcome, RowStatus

if TYPE_CHECKING:  # leads imports pandas, which --help and --version must not wait for
    from batch_attend.leads import Lead

DEFAULT_BASE_URL = "https://app.plugchat.com.br/api/integrations"
START_PATH = "/start-attendance"
SNIPPET_CHARS = 120


class ConfigError(BatchAttendError):
    """A setting that makes sending impossible (base URL, token form)."""


def check_base_url(base_url: str) -> str:
    """The base URL without a trailing slash, or a clear error; nothing is sent to a bad URL."""
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(
            _(
                "base URL '{base_url}' is not an http(s) URL; the default is {DEFAULT_BASE_URL}"
            ).format(base_url=base_url, DEFAULT_BASE_URL=DEFAULT_BASE_URL)
        )
    return base_url.rstrip("/")


def check_token(token: str | None) -> str:
    """The token as given (no scheme added or removed), or an error that never shows it."""
    if not token:
        raise ConfigError(
            _(
                "no API token: set PLUGCHAT_TOKEN (or pass --token); use --sandbox or --dry-run to try the tool without one"
            )
        )
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in token):
        raise ConfigError(
            _(
                "the API token contains a control character (a stray new line?); it was not sent anywhere"
            )
        )
    return token


@dataclass(slots=True)
class Answer:
    """What came back for one request: an HTTP answer, or the reason none came."""

    http_status: int | None = None
    body: bytes = b""
    content_type: str = ""
    retry_after: str | None = None
    location: str | None = None
    failure: ErrorCode | None = None  # timeout / connection_error / connection_lost
    detail: str = ""

    @property
    def may_have_acted(self) -> bool:
        """True when the API may have started the attendance although its answer does not say
        so: no answer came (a time-out, a dropped connection), or a server error did (a proxy's
        502/503/504 may stand in front of a start that went through)."""
        if self.failure is not None:
            return self.failure in (ErrorCode.TIMEOUT, ErrorCode.CONNECTION_LOST)
        return self.http_status is not None and self.http_status >= 500


def _snippet(body: bytes) -> str:
    text = body.decode("utf-8", "replace").strip()
    text = " ".join(text.split())
    return text[:SNIPPET_CHARS] + ("…" if len(text) > SNIPPET_CHARS else "")


def _looks_like_html(answer: Answer) -> bool:
    head = answer.body[:200].lstrip().lower()
    return "html" in answer.content_type.lower() or head.startswith((b"<!doctype", b"<html"))


_STATUS_CODES = {
    400: (ErrorCode.BAD_REQUEST, "the API rejected the request as malformed"),
    401: (ErrorCode.UNAUTHORIZED, "the API refused the token"),
    403: (ErrorCode.FORBIDDEN, "the token may not start attendances"),
    404: (ErrorCode.NOT_FOUND, "no start-attendance endpoint at this address; check --base-url"),
    405: (ErrorCode.METHOD_NOT_ALLOWED, "the API did not accept POST at this address"),
    415: (ErrorCode.UNSUPPORTED_MEDIA_TYPE, "the API did not accept the JSON content type"),
    422: (ErrorCode.BAD_REQUEST, "the API could not process the request"),
    429: (ErrorCode.RATE_LIMITED, "the API asked to slow down (too many requests)"),
}


def _failed(answer: Answer, code: ErrorCode, message: str) -> Outcome:
    return Outcome(
        RowStatus.FAILED, http_status=answer.http_status, error_code=code, error_message=message
    )


def classify(answer: Answer) -> Outcome:
    """Turn any answer into an outcome; never raises. ``phone`` and ``attempts`` are filled by the
    caller."""
    if answer.failure is not None:
        return _failed(answer, answer.failure, answer.detail or answer.failure.replace("_", " "))
    status = answer.http_status or 0
    if 200 <= status < 300:
        return _classify_success(answer)
    if status in _STATUS_CODES:
        code, message = _STATUS_CODES[status]
        if status in (400, 422) and answer.body:
            message += f" (HTTP {status}: {_snippet(answer.body)})"
        if status == 401:
            return Outcome(
                RowStatus.SKIPPED, http_status=401, error_code=code, error_message=message
            )
        return _failed(answer, code, message)
    if 300 <= status < 400:
        where = f" to {answer.location}" if answer.location else ""
        return _failed(
            answer,
            ErrorCode.UNEXPECTED_REDIRECT,
            f"the API redirected{where}; check --base-url (redirects are not followed for POST)",
        )
    if status >= 500:
        kind = "an HTML error page" if _looks_like_html(answer) else "an error"
        return _failed(
            answer, ErrorCode.SERVER_ERROR, f"the API answered HTTP {status} with {kind}"
        )
    body = f": {_snippet(answer.body)}" if answer.body else ""
    return _failed(answer, ErrorCode.CLIENT_ERROR, f"the API answered HTTP {status}{body}")


def _classify_success(answer: Answer) -> Outcome:
    if not answer.body.strip():
        return _failed(answer, ErrorCode.UNEXPECTED_RESPONSE, "the API answered with an empty body")
    if _looks_like_html(answer):
        return _failed(
            answer,
            ErrorCode.UNEXPECTED_RESPONSE,
            "the API answered with an HTML page instead of JSON (a proxy or login page?)",
        )
    try:
        data = json.loads(answer.body)
    except ValueError:
        return _failed(
            answer,
            ErrorCode.UNEXPECTED_RESPONSE,
            f"the API answered with something that is not JSON: {_snippet(answer.body)}",
        )
    if data is True:
        return Outcome(RowStatus.STARTED, http_status=answer.http_status)
    if data is False:
        return _failed(answer, ErrorCode.NOT_STARTED, "the API answered false: nothing was started")
    if isinstance(data, dict) and data.get("status") == "progress":
        operators = data.get("operators")
        ids = tuple(
            str(op["id"])
            for op in (operators if isinstance(operators, list) else [])
            if isinstance(op, dict) and op.get("id") is not None
        )
        number = data.get("attendanceNumber")
        return Outcome(
            RowStatus.ALREADY_IN_SERVICE,
            http_status=answer.http_status,
            attendance_number="" if number is None else str(number),
            operators=ids,
        )
    return _failed(
        answer,
        ErrorCode.UNEXPECTED_RESPONSE,
        f"the API answered with JSON of an unknown shape: {_snippet(answer.body)}",
    )


class PlugChatClient:
    """One aiohttp session per run, sized to the run's concurrency.

    Use as ``async with PlugChatClient(...) as client: answer = await client.start_attendance(lead)``.
    The token goes into the ``Authorization`` header exactly as given and nowhere else; any text
    that comes back from the server is scrubbed of it before it can reach a message.
    """

    def __init__(
        self, base_url: str, token: str, *, timeout: float = 30.0, concurrency: int = 8
    ) -> None:
        self.url = check_base_url(base_url) + START_PATH
        self._token = check_token(token)
        self._timeout = timeout
        self._concurrency = concurrency
        self._session = None

    async def __aenter__(self) -> PlugChatClient:
        import aiohttp

        connector = aiohttp.TCPConnector(
            limit=self._concurrency, limit_per_host=self._concurrency, ttl_dns_cache=300
        )
        # One deadline per request: what --timeout promises, an answer within so many seconds.
        timeout = aiohttp.ClientTimeout(total=self._timeout, sock_connect=self._timeout)
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=timeout,
            headers={"Authorization": self._token},
            skip_auto_headers=("User-Agent",),
            raise_for_status=False,
        )
        return self

    async def __aexit__(self, *exc_info) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def scrub(self, text: str) -> str:
        """``text`` with the token masked: for anything that came back from the server and may
        end up in a message (the answers themselves are classified as they came)."""
        return text.replace(self._token, "[token]") if self._token in text else text

    async def start_attendance(self, lead: Lead) -> Answer:
        """Send one start request; network trouble becomes an :class:`Answer` with ``failure``."""
        return await self.request("POST", self.url, body=lead.body())

    async def request(
        self, method: str, url: str, *, body: dict | None = None, headers: dict | None = None
    ) -> Answer:
        """One request on the run's session (``body`` is sent as JSON); never raises for
        network trouble."""
        import aiohttp

        try:
            async with self._session.request(
                method, url, json=body, headers=headers, allow_redirects=False
            ) as resp:
                return Answer(
                    http_status=resp.status,
                    body=await resp.read(),
                    content_type=resp.headers.get("Content-Type", ""),
                    retry_after=resp.headers.get("Retry-After"),
                    location=resp.headers.get("Location"),
                )
        except aiohttp.ConnectionTimeoutError:
            return Answer(
                failure=ErrorCode.CONNECTION_ERROR,
                detail=f"could not connect to the API within {self._timeout:g} s",
            )
        except TimeoutError:
            return Answer(
                failure=ErrorCode.TIMEOUT,
                detail=f"no answer from the API within {self._timeout:g} s",
            )
        except aiohttp.ClientConnectorError as exc:
            return Answer(
                failure=ErrorCode.CONNECTION_ERROR,
                detail=self.scrub(f"could not connect to the API ({exc.os_error.strerror or exc})"),
            )
        except (
            aiohttp.ServerDisconnectedError,
            aiohttp.ClientPayloadError,
            ConnectionError,
        ) as exc:
            return Answer(
                failure=ErrorCode.CONNECTION_LOST,
                detail=self.scrub(
                    f"the connection closed before an answer came ({type(exc).__name__})"
                ),
            )
        except aiohttp.ClientError as exc:
            return Answer(
                failure=ErrorCode.CONNECTION_LOST,
                detail=self.scrub(f"the request failed ({type(exc).__name__}: {exc})"),
            )
