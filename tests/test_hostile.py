"""Bad days, against servers of the tests' own on 127.0.0.1 built to hurt: long waits asked for,
the token echoed back, answers too large or not HTTP at all, odd numbers, bad URLs and paths."""

from __future__ import annotations

import asyncio
import bisect
import csv
import email.utils
import gzip
import json
import resource
import sqlite3
import subprocess
import threading
import time

import pytest
from aiohttp import web
from click.testing import CliRunner

from batch_attend.cli import cli
from batch_attend.journal import Journal
from batch_attend.leads import Lead
from tests.conftest import PYTHON, TOKEN, clean_env, read_results_csv, write_csv
from tests.scripted import ScriptedServer, reply

LONG_TOKEN = "plug_Zx81kQm2Rt5vWb9Yc3Nd7Fg4Hj6Lp0Sa2Ue8Io1"  # 44 characters, as the vendor's are
PHONE = "5544999990001"


def phones(n: int) -> list[str]:
    return [f"55449999{i:05d}" for i in range(1, n + 1)]


def leads(tmp_path, phone_list, operators="OP-ANA"):
    rows = [["Telefone", "Operadores"], *[[p, operators] for p in phone_list]]
    return write_csv(tmp_path / "leads.csv", rows)


def invoke(runner, server, *args, token=LONG_TOKEN, base_url=None):
    env = {"PLUGCHAT_TOKEN": token, "PLUGCHAT_BASE_URL": base_url or server.base_url}
    return runner.invoke(cli, [str(a) for a in args], env=env)


class Scripted(ScriptedServer):
    @property
    def base_url(self) -> str:
        return self.origin + "/api/integrations"


@pytest.fixture
def server():
    with Scripted() as scripted:
        yield scripted


# --- a Retry-After longer than batch-attend waits ---------------------------------------------


FAR = email.utils.formatdate(253402300799, usegmt=True)  # 31 Dec 9999


@pytest.mark.parametrize(
    ("status", "retry_after"), [(429, "601"), (429, "99999"), (429, FAR), (503, "601")]
)
def test_a_wait_longer_than_batch_attend_keeps_stops_the_run_and_a_rerun_resumes(
    runner, server, tmp_path, status, retry_after
):
    server.handler = reply(status, '{"error": "slow down"}', headers={"Retry-After": retry_after})
    source, out = leads(tmp_path, phones(200)), tmp_path / "r.csv"
    summary = tmp_path / "s.json"
    first = invoke(runner, server, source, "-o", out, "-c", "4", "--summary-json", summary)
    assert first.exit_code == 1, first.stderr
    assert len(server.requests) <= 4  # those in flight; nothing new after the first answer
    rows = read_results_csv(out)
    assert {r["status"] for r in rows} == {"skipped"}
    assert {r["error"].split(":")[0] for r in rows} == {"rate_limited"}
    assert "asked to be called again" in first.stderr
    assert json.loads(summary.read_text())["retry_at"]

    server.handler = reply(200, "true")
    server.requests.clear()
    again = invoke(runner, server, source, "-o", out, "-c", "4")
    assert again.exit_code == 0, again.stderr
    assert len(server.requests) == 200
    assert {r["status"] for r in read_results_csv(out)} == {"started"}


def test_the_rate_option_never_lets_more_than_n_start_in_one_second(
    runner, server, tmp_path, monkeypatch
):
    """Counted where the promise is made, as each request leaves the client (the server's
    arrival times carry the loopback's jitter)."""
    from batch_attend.api import PlugChatClient

    starts: list[float] = []
    send = PlugChatClient.start_attendance

    async def timed(self, lead):
        starts.append(time.monotonic())
        return await send(self, lead)

    monkeypatch.setattr(PlugChatClient, "start_attendance", timed)
    source, out = leads(tmp_path, phones(30)), tmp_path / "r.csv"  # 1.5 s at the rate
    result = invoke(runner, server, source, "-o", out, "-c", "16", "--rate", "20")
    assert result.exit_code == 0, result.stderr
    assert len(starts) == 30
    most = max(bisect.bisect_right(starts, t + 1.0) - i for i, t in enumerate(sorted(starts)))
    assert most <= 20


# --- the token echoed back ----------------------------------------------------------------


def pieces(secret: str, n: int = 8) -> set[str]:
    return {secret[i : i + n] for i in range(len(secret) - n + 1)}


def echo(kind: str):
    async def handler(request: web.Request) -> web.StreamResponse:
        token = request.headers["Authorization"]
        pad = "x" * 85
        if kind == "400":
            return web.Response(status=400, text=f"bad request: {pad} header was {token}")
        if kind == "422-part":
            return web.Response(status=422, text=f"{pad} got '{token[3:37]}' and '{token[20:]}'")
        if kind == "odd-200":
            return web.json_response({"echo": pad + token})
        if kind == "progress":
            return web.json_response(
                {"status": "progress", "attendanceNumber": token, "operators": [{"id": token}]}
            )
        if kind == "redirect":
            return web.Response(status=302, headers={"Location": f"https://x.test/?t={token}"})
        return web.Response(status=418, text=" ".join(token))  # spaced: no piece of 8 in a row

    return handler


@pytest.mark.parametrize("kind", ["400", "422-part", "odd-200", "progress", "redirect", "418"])
def test_no_piece_of_the_token_is_kept_or_shown_whatever_the_server_echoes(
    runner, server, tmp_path, kind
):
    server.handler = echo(kind)
    source, out, log = leads(tmp_path, [PHONE]), tmp_path / "r.csv", tmp_path / "log.jsonl"
    result = invoke(runner, server, source, "-o", out, "-v", "--log-file", log, "--retries", "0")
    assert result.exit_code == (0 if kind == "progress" else 1), result.stderr
    with sqlite3.connect(tmp_path / "r.csv.journal") as db:
        journal = "\n".join(db.iterdump())
    seen = {
        "results": out.read_text("utf-8-sig"),
        "journal": journal,
        "stderr": result.stderr,
        "stdout": result.stdout,
        "log": log.read_text(),
    }
    for where, text in seen.items():
        leaked = [p for p in pieces(LONG_TOKEN) if p in text]
        assert not leaked, f"{where} shows {leaked[0]!r}"
    assert "[token]" in seen["results"] or kind == "418"


# --- answers that would fill the memory -----------------------------------------------------


def big_body(request):
    return web.Response(status=200, body=b" " * (10 * 1024 * 1024), content_type="text/plain")


async def gzip_bomb(request):
    body = gzip.compress(b"0" * (64 * 1024 * 1024), compresslevel=9)
    return web.Response(
        status=200, body=body, headers={"Content-Encoding": "gzip", "Content-Type": "text/plain"}
    )


async def chunked_forever(request):
    response = web.StreamResponse(status=200)
    response.enable_chunked_encoding()
    await response.prepare(request)
    for _ in range(200):  # 200 MB if it were all read
        await response.write(b"x" * (1024 * 1024))
    return response


@pytest.mark.parametrize(
    "handler",
    [
        lambda r: asyncio.sleep(0, big_body(r)),
        gzip_bomb,
        chunked_forever,
    ],
    ids=["10-MB", "gzip-bomb", "endless-chunks"],
)
def test_an_answer_past_the_limit_is_not_read(runner, server, tmp_path, handler):
    server.handler = handler
    source, out = leads(tmp_path, [PHONE]), tmp_path / "r.csv"
    result = invoke(runner, server, source, "-o", out, "--retries", "0")
    assert result.exit_code == 1, result.stderr
    (row,) = read_results_csv(out)
    assert row["status"] == "failed"
    assert row["error"].startswith("unexpected_response: the API answered with more than 64 KiB")


def test_an_error_status_with_a_huge_body_is_still_judged_by_its_status(runner, server, tmp_path):
    server.handler = reply(401, b"x" * (1024 * 1024))
    source, out = leads(tmp_path, phones(3)), tmp_path / "r.csv"
    result = invoke(runner, server, source, "-o", out)
    assert result.exit_code == 3, result.stderr


# --- answers that are not HTTP, and numbers no float holds -----------------------------------


class RawServer:
    """A TCP server on 127.0.0.1 that answers every connection with the same bytes."""

    def __init__(self, answer: bytes) -> None:
        self.answer = answer
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    async def _handle(self, reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(self.answer)
        await writer.drain()
        writer.close()

    def __enter__(self):
        self.thread.start()
        server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._handle, "127.0.0.1", 0), self.loop
        ).result(5)
        self.server = server
        port = server.sockets[0].getsockname()[1]
        self.base_url = f"http://127.0.0.1:{port}/api/integrations"
        return self

    def __exit__(self, *exc):
        self.server.close()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def test_an_answer_that_is_not_http_is_not_shown_as_a_400(runner, tmp_path):
    with RawServer(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nBad Header Line\r\n\r\ntrue") as raw:
        source, out = leads(tmp_path, [PHONE]), tmp_path / "r.csv"
        result = invoke(runner, raw, source, "-o", out, "--retries", "1", "--no-status-check")
    (row,) = read_results_csv(out)
    assert result.exit_code == 1
    assert (row["status"], row["http_status"], row["attempts"]) == ("failed", "", "2")
    assert row["error"].startswith("malformed_answer: the answer was not valid HTTP")
    assert "400" not in row["error"]


@pytest.mark.parametrize("number", ["1e999", "9" * 5000, "-0.0", "12345678901234567890"])
def test_an_attendance_number_is_shown_as_the_api_wrote_it(runner, server, tmp_path, number):
    body = '{"status": "progress", "attendanceNumber": NUMBER, "operators": [{"id": 7}]}'
    body = body.replace("NUMBER", number)
    server.handler = reply(200, body, content_type="application/json")
    source, out = leads(tmp_path, [PHONE]), tmp_path / "r.csv"
    result = invoke(runner, server, source, "-o", out)
    (row,) = read_results_csv(out)
    assert result.exit_code == 0, result.stderr
    assert (row["status"], row["attendance_number"], row["operators"]) == (
        "already_in_service",
        number,
        "7",
    )


# --- URLs and paths checked before anything is sent --------------------------------------------


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://ana:s3cr3t-pass@{host}/api/integrations", "user name or password"),
        ("http://[::1", "cannot be read as a URL"),
        ("http://127.0.0.1:99999/api/integrations", "cannot be read as a URL"),
        ("http://{host}/api/integrations?debug=1", "query string"),
        ("http://{host}/api/integrations#top", "query string"),
        ("http://127.0.0.1:0/api/integrations", "port 0"),
    ],
)
def test_a_bad_base_url_is_refused_before_anything_is_sent(runner, server, tmp_path, url, says):
    host = server.base_url.split("/")[2]
    source, out = leads(tmp_path, [PHONE]), tmp_path / "r.csv"
    result = invoke(runner, server, source, "-o", out, base_url=url.format(host=host))
    assert result.exit_code == 2, result.stderr
    assert says in result.stderr
    assert "s3cr3t" not in result.stderr
    assert server.requests == []
    assert not (tmp_path / "r.csv.journal").exists() and not out.exists()


@pytest.mark.parametrize("option", ["--summary-json", "--log-file", "--journal"])
def test_a_file_that_cannot_be_written_is_found_before_sending(runner, server, tmp_path, option):
    (tmp_path / "plain-file").write_text("")
    source, out = leads(tmp_path, [PHONE]), tmp_path / "r.csv"
    result = invoke(runner, server, source, "-o", out, option, tmp_path / "plain-file" / "x")
    assert result.exit_code == 2, result.stderr
    assert "does not exist" in result.stderr and "unexpected" not in result.stderr
    assert server.requests == []
    assert not (tmp_path / "r.csv.journal").exists() and not out.exists()


# --- a full disk once sending has begun ----------------------------------------------------


def test_a_full_disk_while_sending_gives_one_message_the_results_and_exit_5(sandbox, tmp_path):
    """The files the run writes may grow to 1.5 MB (RLIMIT_FSIZE, as a full disk would stop
    them): the journal's log of 3,000 leads outgrows it, the results and the summary do not."""
    source, out, summary = leads(tmp_path, phones(3000)), tmp_path / "r.csv", tmp_path / "s.json"
    command = [*PYTHON, source, "-o", out, "-c", "4", "--summary-json", summary]
    env = clean_env(PLUGCHAT_TOKEN=TOKEN, PLUGCHAT_BASE_URL=sandbox.base_url)

    def small_files():
        resource.setrlimit(resource.RLIMIT_FSIZE, (1_500_000, 1_500_000))

    full = subprocess.run(
        [str(a) for a in command], env=env, preexec_fn=small_files, capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip
    assert full.returncode == 5, full.stderr
    assert full.stderr.count("batch-attend: error:") == 1 and "Traceback" not in full.stderr
    assert "the journal could not be written" in full.stderr
    facts = json.loads(summary.read_text())
    assert facts["exit_code"] == 5 and "journal could not be written" in facts["error"]
    rows = read_results_csv(out)
    started = {r["phone"] for r in rows if r["status"] == "started"}
    assert len(rows) == 3000 and 0 < len(started) < 3000
    assert {r["error"].split(":")[0] for r in rows if r["status"] != "started"} == {"interrupted"}

    again = subprocess.run([str(a) for a in command], env=env, capture_output=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert {r["status"] for r in read_results_csv(out)} == {"started"}
    assert set(sandbox.state.starts.values()) == {1}  # every lead started once
    assert sum(sandbox.state.starts.values()) == 3000


# --- a config file that redirects the token ----------------------------------------------


def test_a_config_file_in_use_is_named_with_its_base_url_even_when_quiet(
    runner, server, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "batch-attend.toml").write_text(f'base-url = "{server.base_url}"\nquiet = true\n')
    source = leads(tmp_path, [PHONE])
    result = runner.invoke(cli, [str(source), "-o", "r.csv"], env={"PLUGCHAT_TOKEN": LONG_TOKEN})
    assert result.exit_code == 0, result.stderr
    first = result.stderr.splitlines()[0]
    assert str(tmp_path / "batch-attend.toml") in first and server.base_url in first

    given = runner.invoke(
        cli,
        [str(source), "-o", "r2.csv", "--base-url", server.base_url],
        env={"PLUGCHAT_TOKEN": LONG_TOKEN},
    )
    assert "batch-attend.toml" in given.stderr and "base URL" not in given.stderr


# --- attempts the server never received --------------------------------------------------


def killed_after_the_record_then_rerun(sandbox, tmp_path, *, arrived: bool) -> dict:
    """A ledger as a run killed between a request's record and its answer leaves it (the
    request reached the sandbox and started the lead when ``arrived``), then a rerun: its row."""
    source, out = leads(tmp_path, [PHONE]), tmp_path / "r.csv"
    journal = Journal.open(
        tmp_path / "r.csv.journal", target=sandbox.base_url, input="x", fresh=False
    )
    asyncio.run(journal.sending(Lead(0, 2, PHONE, ("OP-ANA",), "")))
    journal.unlock()  # as a killed process leaves it: no answer, no close
    if arrived:
        sandbox.state.attendances[PHONE] = (1001, ["OP-ANA"])
    result = CliRunner().invoke(
        cli,
        [str(source), "-o", str(out)],
        env={"PLUGCHAT_TOKEN": TOKEN, "PLUGCHAT_BASE_URL": sandbox.base_url},
    )
    assert result.exit_code == 0, result.stderr
    (row,) = read_results_csv(out)
    return row


def test_a_request_recorded_but_never_sent_before_a_kill_is_not_counted(sandbox, tmp_path):
    """kill -9 between the record and the request: the rerun's one request is the only one."""
    row = killed_after_the_record_then_rerun(sandbox, tmp_path, arrived=False)
    assert (row["status"], row["attempts"]) == ("started", "1")
    assert sum(sandbox.state.requests.values()) == 1


def test_a_request_that_did_arrive_before_a_kill_is_counted_once_its_answer_shows_it(
    sandbox, tmp_path
):
    row = killed_after_the_record_then_rerun(sandbox, tmp_path, arrived=True)
    assert (row["status"], row["attempts"]) == ("started", "2")
    assert row["error"].startswith("confirmed_on_retry")


def test_an_operators_cell_of_millions_of_ids_is_refused_without_splitting_it(
    runner, server, tmp_path
):
    huge = ",".join(f"OP-{i}" for i in range(2_000_000))  # 20 MB in one cell
    source = write_csv(tmp_path / "leads.csv", [["Telefone", "Operadores"], [PHONE, huge]])
    result = invoke(runner, server, source, "-o", tmp_path / "r.csv")
    csv.field_size_limit(1 << 26)  # the cell comes back whole
    (row,) = read_results_csv(tmp_path / "r.csv")
    assert result.exit_code == 1
    assert row["status"] == "invalid" and row["error"].startswith("too_many_operators")
    assert server.requests == []


def test_requests_waiting_for_their_turn_in_the_rate_are_not_sent_once_the_run_stops(
    runner, server, tmp_path
):
    server.handler = reply(401, "no")
    source, out = leads(tmp_path, phones(3)), tmp_path / "r.csv"  # two wait, the last 1 s
    result = invoke(runner, server, source, "-o", out, "-c", "8", "--rate", "2")
    assert result.exit_code == 3, result.stderr
    assert len(server.requests) == 1  # the others waited for their slot, and then the stop
    with sqlite3.connect(tmp_path / "r.csv.journal") as db:
        assert db.execute("SELECT count(*) FROM attempts").fetchone()[0] == 1  # no false record


def test_a_server_that_closes_after_every_answer_costs_no_failed_row_and_no_retry(runner, tmp_path):
    """It closes without saying so: a request that goes out on a pooled connection it has
    closed meanwhile is sent again at once on a fresh one, without spending a retry."""
    answer = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 4\r\n\r\ntrue"
    with RawServer(answer) as raw:
        source, out = leads(tmp_path, phones(300)), tmp_path / "r.csv"
        summary = tmp_path / "s.json"
        result = invoke(
            runner, raw, source, "-o", out, "-c", "8", "--retries", "0", "--no-status-check",
            "--summary-json", summary,
        )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert {r["status"] for r in read_results_csv(out)} == {"started"}
    assert json.loads(summary.read_text())["retries"] == 0
