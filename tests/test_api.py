"""Every documented and undocumented answer, driven through the real client and the classifier.

Each answer comes from a scripted server on 127.0.0.1 over a real connection, so these tests run
the same aiohttp code a real run does: status lines, headers, bodies, hang-ups and time-outs.
"""

import asyncio
import json
import socket

import pytest

from batch_attend.api import (
    Answer,
    ConfigError,
    PlugChatClient,
    check_base_url,
    check_token,
    classify,
)
from batch_attend.leads import Lead
from batch_attend.outcomes import ErrorCode, RowStatus
from tests.scripted import ScriptedServer, abort_before_answer, reply, sleep_then, truncated_body

TOKEN = "tok-SECRET-7f3a9c21"
LEAD = Lead(index=0, row=2, phone="554499999999", operators=("OP-1", "OP-2"), department="DEP")
JSON = "application/json"
PROGRESS = json.dumps(
    {
        "status": "progress",
        "message": "chat is already in service",
        "attendanceNumber": 9999,
        "operators": [{"id": "OPERADOR-ID-1", "name": "Fulano de Tal"}],
    }
)


@pytest.fixture(scope="module")
def server():
    with ScriptedServer() as srv:
        yield srv


def send(server, handler, token=TOKEN, timeout=5.0, base=None) -> Answer:
    server.handler = handler
    server.requests.clear()

    async def go():
        async with PlugChatClient(
            base or server.origin + "/api/integrations", token, timeout=timeout
        ) as client:
            return await client.start_attendance(LEAD)

    return asyncio.run(go())


def test_request_has_the_documented_shape(server):
    answer = send(server, reply(200, "true", JSON))
    (request,) = server.requests
    assert request["method"] == "POST"
    assert request["path"] == "/api/integrations/start-attendance"
    assert request["headers"]["Authorization"] == TOKEN
    assert request["headers"]["Content-Type"] == "application/json"
    assert json.loads(request["body"]) == {
        "phone": "554499999999",
        "operators": ["OP-1", "OP-2"],
        "departmentId": "DEP",
    }
    assert classify(answer).status is RowStatus.STARTED


@pytest.mark.parametrize("token", [TOKEN, f"Bearer {TOKEN}"])
def test_token_is_sent_exactly_as_given(server, token):
    send(server, reply(200, "true", JSON), token=token)
    assert server.requests[0]["headers"]["Authorization"] == token


HTML = "<!DOCTYPE html><html><body>login</body></html>"

# (scripted answer, expected status, expected error code, expected http status)
ANSWERS = [
    (reply(200, "true", JSON), RowStatus.STARTED, "", 200),
    (reply(200, "true"), RowStatus.STARTED, "", 200),
    (reply(200, PROGRESS, JSON), RowStatus.ALREADY_IN_SERVICE, "", 200),
    (reply(200, "false", JSON), RowStatus.FAILED, ErrorCode.NOT_STARTED, 200),
    (reply(401, "Unauthorized"), RowStatus.SKIPPED, ErrorCode.UNAUTHORIZED, 401),
    (reply(405), RowStatus.FAILED, ErrorCode.METHOD_NOT_ALLOWED, 405),
    (reply(415), RowStatus.FAILED, ErrorCode.UNSUPPORTED_MEDIA_TYPE, 415),
    (reply(400, '{"error": "phone"}', JSON), RowStatus.FAILED, ErrorCode.BAD_REQUEST, 400),
    (reply(403), RowStatus.FAILED, ErrorCode.FORBIDDEN, 403),
    (reply(404, "Not Found"), RowStatus.FAILED, ErrorCode.NOT_FOUND, 404),
    (reply(409, "conflict"), RowStatus.FAILED, ErrorCode.CLIENT_ERROR, 409),
    (reply(422, '{"errors": ["x"]}', JSON), RowStatus.FAILED, ErrorCode.BAD_REQUEST, 422),
    (reply(429, headers={"Retry-After": "3"}), RowStatus.FAILED, ErrorCode.RATE_LIMITED, 429),
    (reply(429), RowStatus.FAILED, ErrorCode.RATE_LIMITED, 429),
    (reply(500, "boom"), RowStatus.FAILED, ErrorCode.SERVER_ERROR, 500),
    (reply(502, "<html><h1>502 Bad Gateway</h1></html>", "text/html"), RowStatus.FAILED, ErrorCode.SERVER_ERROR, 502),
    (reply(503), RowStatus.FAILED, ErrorCode.SERVER_ERROR, 503),
    (reply(504), RowStatus.FAILED, ErrorCode.SERVER_ERROR, 504),
    (reply(200, HTML, "text/html"), RowStatus.FAILED, ErrorCode.UNEXPECTED_RESPONSE, 200),
    (reply(200, HTML), RowStatus.FAILED, ErrorCode.UNEXPECTED_RESPONSE, 200),
    (reply(200, ""), RowStatus.FAILED, ErrorCode.UNEXPECTED_RESPONSE, 200),
    (reply(200, "   "), RowStatus.FAILED, ErrorCode.UNEXPECTED_RESPONSE, 200),
    (reply(200, '{"status": "progr', JSON), RowStatus.FAILED, ErrorCode.UNEXPECTED_RESPONSE, 200),
    (reply(200, '{"ok": true}', JSON), RowStatus.FAILED, ErrorCode.UNEXPECTED_RESPONSE, 200),
    (reply(200, "[1, 2]", JSON), RowStatus.FAILED, ErrorCode.UNEXPECTED_RESPONSE, 200),
    (reply(200, '"true"', JSON), RowStatus.FAILED, ErrorCode.UNEXPECTED_RESPONSE, 200),
    (reply(200, b"\xff\xfe\x00garbage"), RowStatus.FAILED, ErrorCode.UNEXPECTED_RESPONSE, 200),
    (reply(201, "true", JSON), RowStatus.STARTED, "", 201),
    (reply(204), RowStatus.FAILED, ErrorCode.UNEXPECTED_RESPONSE, 204),
    (reply(302, headers={"Location": "https://login.example.test/"}), RowStatus.FAILED, ErrorCode.UNEXPECTED_REDIRECT, 302),
    (reply(418, "teapot"), RowStatus.FAILED, ErrorCode.CLIENT_ERROR, 418),
    (abort_before_answer(), RowStatus.FAILED, ErrorCode.CONNECTION_LOST, None),
    (truncated_body(), RowStatus.FAILED, ErrorCode.CONNECTION_LOST, None),
]  # fmt: skip


@pytest.mark.parametrize(("handler", "status", "code", "http_status"), ANSWERS)
def test_every_answer_is_classified(server, handler, status, code, http_status):
    outcome = classify(send(server, handler))
    assert outcome.status is status
    assert outcome.error_code == code
    assert outcome.http_status == http_status
    if code:
        assert outcome.error.startswith(f"{code}: ") and len(outcome.error) > len(code) + 5


def test_read_timeout_is_classified_as_timeout(server):
    answer = send(server, sleep_then(1.0, reply(200, "true")), timeout=0.2)
    assert answer.may_have_acted
    outcome = classify(answer)
    assert (outcome.status, outcome.error_code) == (RowStatus.FAILED, ErrorCode.TIMEOUT)
    assert "0.2 s" in outcome.error


def test_refused_connection_is_a_connection_error(server):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound but not listening: connections are refused
        answer = send(server, reply(200, "true"), base=f"http://127.0.0.1:{port}/api/integrations")
    assert not answer.may_have_acted
    outcome = classify(answer)
    assert (outcome.status, outcome.error_code) == (RowStatus.FAILED, ErrorCode.CONNECTION_ERROR)


def test_progress_answer_reports_number_and_operators(server):
    answer = send(server, reply(200, PROGRESS, JSON))
    outcome = classify(answer)
    assert outcome.attendance_number == "9999"
    assert outcome.operators == ("OPERADOR-ID-1",)


def test_progress_answer_with_odd_operators_does_not_crash():
    odd = {
        "status": "progress",
        "operators": [None, {"name": "x"}, {"id": 7}],
        "attendanceNumber": None,
    }
    outcome = classify(Answer(http_status=200, body=json.dumps(odd).encode()))
    assert outcome.status is RowStatus.ALREADY_IN_SERVICE
    assert outcome.operators == ("7",)
    assert outcome.attendance_number == ""


def test_retry_after_and_whether_the_api_may_have_acted_are_kept(server):
    answer = send(server, reply(429, headers={"Retry-After": "7"}))
    assert answer.retry_after == "7"
    assert Answer(failure=ErrorCode.TIMEOUT).may_have_acted
    assert Answer(failure=ErrorCode.CONNECTION_LOST).may_have_acted
    assert not Answer(failure=ErrorCode.CONNECTION_ERROR).may_have_acted


@pytest.mark.parametrize(
    ("status", "acted"),
    [(200, False), (400, False), (401, False), (429, False), (500, True), (502, True),
     (503, True), (504, True)],
)  # fmt: skip
def test_a_server_error_may_hide_a_start_that_went_through(status, acted):
    assert Answer(http_status=status).may_have_acted is acted


def test_a_refused_connection_is_no_resend_even_after_one():
    """Only a connection the pool gave can have been used before: once the server is gone, a
    request on the kept-alive connection is sent again (the first may have gone out), but the
    next finds the connection refused, and went out nowhere."""

    async def go():
        with ScriptedServer() as srv:
            srv.handler = reply(200, "true", JSON)
            client = await PlugChatClient(srv.origin + "/api/integrations", TOKEN).__aenter__()
            assert not (await client.start_attendance(LEAD)).resent
        try:  # nothing listens there any more
            return [await client.start_attendance(LEAD) for _ in range(2)]
        finally:
            await client.__aexit__(None, None, None)

    on_the_kept_one, next_one = asyncio.run(go())
    assert on_the_kept_one.resent and on_the_kept_one.failure == ErrorCode.CONNECTION_ERROR
    assert next_one.failure == ErrorCode.CONNECTION_ERROR
    assert not next_one.resent and not next_one.may_have_acted


def test_scrub_masks_the_token_in_server_text():
    client = PlugChatClient("https://api.example.test/api/integrations", TOKEN)
    message = classify(Answer(http_status=400, body=f"bad header: {TOKEN}".encode())).error
    assert TOKEN in message  # classify is pure; the engine scrubs what it keeps
    assert TOKEN not in client.scrub(message) and "[token]" in client.scrub(message)


@pytest.mark.parametrize("token", [None, "", "abc\n", "a\x00b"])
def test_bad_tokens_are_refused_without_showing_them(token):
    with pytest.raises(ConfigError) as info:
        check_token(token)
    if token:
        assert token not in str(info.value)


@pytest.mark.parametrize("url", ["ftp://x/api", "app.plugchat.com.br/api", "", "http://"])
def test_bad_base_urls_are_refused(url):
    with pytest.raises(ConfigError, match="not an http"):
        check_base_url(url)


def test_base_url_trailing_slash_is_tolerated():
    base = "https://api.example.test/api/integrations"
    assert check_base_url(base + "/") == base
