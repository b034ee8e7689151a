"""``batch-attend serve`` against a hostile or unlucky visitor: run folders edited by hand, an
upload cut off halfway, an input gone after the upload, a language switch told to go elsewhere,
a choice saved while a start is arriving, and what a cancelled run says on the page."""

from __future__ import annotations

import json
import re
import socket
import time

import pytest

from tests.conftest import SAMPLES
from tests.test_serve import leads_csv
from tests.web_client import Web, multipart, on_slow_sandbox


@pytest.fixture
def web(tmp_path):
    with Web(tmp_path / "data", {"sandbox": True}) as web:
        web.login()
        yield web


def _wait(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _run_id(url: str) -> str:
    return url.rsplit("/", 1)[1]


def _connect(web: Web) -> socket.socket:
    return socket.create_connection(("127.0.0.1", web.background.port), timeout=30)


# --- run folders that are not as this server wrote them ---------------------------------------

BAD_FILES = [
    ("status.json", '"finished"'),
    ("status.json", '{"state": "paused"}'),  # from another version, or edited
    ("status.json", '{"state": "finished", "counts": [3]}'),
    ("status.json", '{"state": "finished", "counts": {"started": "many"}}'),
    ("status.json", '{"state": "finished", "not_done": {"rows": [[1]], "more": 0}}'),
    ("status.json", '{"state": "finished", "summary": {"x": 1}}'),
    ("options.json", '"leads.csv"'),
    ("options.json", '{"name": 5, "ext": ".csv", "created": 7, "choices": []}'),
    ("options.json", '{"name": "a.csv", "ext": ".csv", "created": "x", "choices": {"x": 1}}'),
    ("options.json", '{"name": "a.csv", "ext": "/../../../etc/passwd", "created": "x"}'),
]


@pytest.mark.parametrize(("name", "content"), BAD_FILES)
def test_one_damaged_run_folder_does_not_take_the_pages_down(web, tmp_path, name, content):
    good = web.new_run(SAMPLES / "leads.csv")
    bad = web.new_run(SAMPLES / "leads.csv")
    (tmp_path / "data" / "runs" / _run_id(bad) / name).write_text(content, encoding="utf-8")
    for path in ("/", "/runs", good):
        answer = web.get(path)
        assert answer.status == 200, (path, answer.text[:200])
        assert _run_id(good) in answer.text
    assert web.get(bad).status in (200, 404)
    assert web.get(bad + "/events").status in (200, 404)


# --- an upload cut off halfway -----------------------------------------------------------------


def test_an_upload_cut_off_halfway_leaves_no_run(web, tmp_path):
    """A closed tab or a dropped connection mid-upload: no run with half a spreadsheet (its
    first rows only) is left in the history to be started."""
    body, kind = multipart("leads.csv", b"Telefone\n" + b"5544999999999\n" * 150_000)
    runs = tmp_path / "data" / "runs"
    with _connect(web) as sock:
        head = (
            f"POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {web.cookie}\r\n"
            f"X-Batch-Attend: 1\r\nContent-Type: {kind}\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        sock.sendall(head.encode() + body[: len(body) // 2])
        _wait(lambda: any(p.stat().st_size > 0 for p in runs.glob("*/input.csv")))
    _wait(lambda: not list(runs.iterdir()))
    assert "leads.csv" not in web.get("/runs").text


# --- an input gone after the upload -----------------------------------------------------------


def test_the_preview_of_an_input_gone_or_replaced_says_why(web, tmp_path):
    gone = web.new_run(SAMPLES / "leads.csv")
    (tmp_path / "data" / "runs" / _run_id(gone) / "input.csv").unlink()
    answer = web.get(gone)
    assert answer.status == 200 and "leads.csv: no such file" in answer.text
    folder = web.new_run(SAMPLES / "leads.xlsx")
    path = tmp_path / "data" / "runs" / _run_id(folder) / "input.xlsx"
    path.unlink()
    path.mkdir()
    answer = web.get(folder)
    assert answer.status == 200 and "leads.xlsx: is a folder" in answer.text


# --- the language switch ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "back", ["/%09/evil.example", "/%0a/evil.example", "/%0d%0a/evil.example", "/%5c/evil.example"]
)
def test_the_language_switch_goes_back_to_this_site_only(web, back):
    """Browsers drop tabs and line breaks from an address: ``/<tab>/evil.example`` would be
    ``//evil.example``, another site."""
    answer = web.get(f"/lang/pt_BR?next={back}")
    assert answer.status == 303
    assert answer.header("Location") == "/"
    assert web.get("/lang/pt_BR?next=/runs").header("Location") == "/runs"


# --- a choice saved while a start is arriving ---------------------------------------------------


def test_a_choice_saved_while_a_start_is_arriving_is_kept(web):
    """The start's body is still coming when the page saves a choice: the run uses that
    choice, and does not write back the choices it read before."""
    url = web.new_run(SAMPLES / "leads.xlsx")
    with _connect(web) as sock:
        sock.sendall(
            (
                f"POST {url}/start HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {web.cookie}\r\n"
                "X-Batch-Attend: 1\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
                "Connection: close\r\n\r\n"
            ).encode()
        )
        time.sleep(0.3)  # the server has the request, not its body
        saved = web.post(url + "/options", {"department": "DEP-SUPORTE"})
        assert saved.status == 200
        sock.sendall(b"{}")
        assert b" 200 " in sock.recv(1000).split(b"\r\n")[0] + b" "
    web.events(url)
    assert web.server.store.get(_run_id(url)).choices.get("department") == "DEP-SUPORTE"


# --- what a cancelled run says on the page --------------------------------------------------


def test_a_cancelled_run_speaks_the_pages_words_not_the_command_lines(tmp_path):
    """The page has a Resume button, not a command to run again, nor a SIGINT; and the
    sentence saying how to resume stays after a reload."""
    leads = leads_csv(tmp_path / "leads.csv", 40)
    with on_slow_sandbox(tmp_path / "data", latency=0.15) as (_state, web):
        web.login()
        url = web.new_run(leads)
        assert web.post(url + "/start").status == 200
        _wait(lambda: (w := web.watch(url)) is not None and w.snapshot()["done"] >= 4)
        assert web.post(url + "/cancel").status == 200
        end = web.end(url)
        assert end["state"] == "interrupted"
        reasons = [error for _row, _status, error in end["not_done"]["rows"]]
        assert reasons and set(reasons) == {"not sent: the run was cancelled; Resume sends it"}
        for text in (json.dumps(reasons), web.get(url).text):
            assert "SIGINT" not in text and "same command" not in text
        message = re.search(r'id="message"[^>]*>([^<]*)<', web.get(url).text)
        assert message and message[1].startswith("Cancelled: the rows not sent are")
        portuguese = web.get(url, headers={"Accept-Language": "pt-BR"}).text
        assert "SIGINT" not in portuguese and "mesmo comando" not in portuguese
