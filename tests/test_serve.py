"""``batch-attend serve`` over real HTTP on 127.0.0.1: the key, cross-site requests, uploads,
the token kept on the server, one engine with the CLI, cancel and resume."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import re
import signal
import stat
import subprocess
import threading
import time
import urllib.request
import zipfile
from pathlib import Path

import openpyxl
import pytest

from batch_attend.cli import cli
from batch_attend.run import Watch
from batch_attend.sandbox import SandboxServer, SandboxState
from tests.conftest import PYTHON, SAMPLES, TOKEN, clean_env, write_csv
from tests.web_client import KEY, Web, on_slow_sandbox

SANDBOX = {"sandbox": True}


@pytest.fixture
def web(tmp_path):
    with Web(tmp_path / "data", SANDBOX) as web:
        yield web


def results_rows(path: Path) -> list[dict]:
    """The Results sheet of an XLSX, or the rows of a CSV, without ``done_at`` (a moment)."""
    if path.suffix == ".xlsx":
        rows = list(openpyxl.load_workbook(path)["Results"].iter_rows(values_only=True))
        found = [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]
    else:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            found = list(csv.DictReader(fh))
    for row in found:
        del row["done_at"]
    return found


def leads_csv(path: Path, count: int) -> Path:
    rows = [["Nome", "Telefone", "Operadores"]]
    rows += [[f"Lead {i}", f"5544998{i:06d}", "OP-ANA"] for i in range(count)]
    return write_csv(path, rows)


# --- the key ---------------------------------------------------------------------------------


def test_every_route_needs_the_key(web):
    web.login()
    url = web.new_run(SAMPLES / "leads.csv")
    routes = [
        ("GET", "/"),
        ("GET", "/runs"),
        ("GET", url),
        ("GET", url + "/events"),
        ("GET", url + "/results.xlsx"),
        ("GET", url + "/results.csv"),
        ("GET", "/static/app.js"),
        ("GET", "/static/app.css"),
        ("GET", "/lang/pt_BR"),
        ("GET", "/template.xlsx"),
        ("GET", "/no/such/page"),
        ("POST", "/upload"),
        ("POST", url + "/start"),
        ("POST", url + "/cancel"),
        ("POST", url + "/options"),
    ]
    others = {
        "none": {},
        "a wrong cookie": {"Cookie": web.cookie.split("=")[0] + "=wrong"},
        "another cookie": {"Cookie": "batch_attend_key=" + KEY},
    }
    for method, path in routes:
        for why, headers in others.items():
            answer = web.request(
                method, path, headers={"X-Batch-Attend": "1", **headers}, cookie=False
            )
            assert answer.status == 403, (method, path, why)
            assert KEY not in answer.text
        wrong = web.request(method, path + "?key=wrong-key", cookie=False)
        assert wrong.status == 403, (method, path)
        assert web.request(method, path, cookie=False).status == 403
    assert web.server.jobs == {}  # no start went through
    assert web.server.store.get(url.rsplit("/", 1)[1]).status["state"] == "new"


def test_the_key_in_the_address_becomes_a_cookie_and_leaves_the_address(web):
    answer = web.get(f"/runs?x=1&key={KEY}", cookie=False)
    assert answer.status == 200
    cookie = answer.header("Set-Cookie")
    flags = [part.strip().lower() for part in cookie.split(";")]
    assert "httponly" in flags and "samesite=strict" in flags and "path=/" in flags
    name, value = cookie.split(";")[0].split("=", 1)
    # Bound to this server's port, and not the key: a browser sends it to every port of the host.
    assert name == f"batch_attend_{web.origin.rsplit(':', 1)[1]}"
    assert KEY not in value and len(value) == 64
    assert 'content="0;url=/runs?x=1"' in answer.text  # the same page, without the key
    assert KEY not in answer.text
    assert answer.header("Referrer-Policy") == "no-referrer"  # the address is not passed on
    web.cookie = cookie.split(";")[0]
    page = web.get("/runs")
    assert page.status == 200 and "History" in page.text
    assert page.header("Content-Security-Policy").startswith("default-src 'none'")


# --- cross-site requests -----------------------------------------------------------------------


def test_posts_from_elsewhere_are_refused(web, tmp_path):
    web.login()
    data = (SAMPLES / "leads.csv").read_bytes()
    refused = {
        "no header": {"X-Batch-Attend": ""},
        "another origin": {"Origin": "http://evil.example"},
        "a look-alike origin": {"Origin": f"http://127.0.0.1.evil.example:{web.background.port}"},
        "a null origin": {"Origin": "null"},
        "cross-site fetch": {"Sec-Fetch-Site": "cross-site"},
        "same-site fetch": {"Sec-Fetch-Site": "same-site"},
    }
    for why, headers in refused.items():
        assert web.upload("leads.csv", data, headers=headers).status == 403, why
    assert list((tmp_path / "data" / "runs").iterdir()) == []
    same = {"Origin": web.origin, "Sec-Fetch-Site": "same-origin"}
    url = web.upload("leads.csv", data, headers=same).json()["url"]
    for why, headers in refused.items():
        assert web.post(url + "/start", {}, headers=headers).status == 403, why
    assert web.server.jobs == {}


# --- uploads -----------------------------------------------------------------------------------


def test_upload_limits_and_names(web, tmp_path):
    web.login()
    runs = tmp_path / "data" / "runs"
    too_big = web.upload("big.csv", b"a" * (50 * 1024 * 1024 + 70_000))
    assert too_big.status == 413
    for name in ("leads.exe", "leads", "leads.csv.sh", "leads.html"):
        answer = web.upload(name, b"Telefone\n5544999999999\n")
        assert answer.status == 400, name
        assert "Only these files" in answer.json()["error"]
    assert web.upload("empty.csv", b"").status == 400
    assert list(runs.iterdir()) == []  # nothing refused is kept
    answer = web.upload("../../x<script>.csv", (SAMPLES / "leads.csv").read_bytes())
    assert answer.status == 200
    (folder,) = runs.iterdir()
    assert sorted(p.name for p in folder.iterdir()) == ["input.csv", "options.json", "status.json"]
    assert not list(tmp_path.rglob("x*.csv"))
    assert stat.S_IMODE((folder / "input.csv").stat().st_mode) == 0o600
    page = web.get(answer.json()["url"]).text
    assert "x&lt;script&gt;.csv" in page and "x<script>" not in page
    assert web.get("/runs/../../etc/passwd").status == 404
    assert web.get("/runs/20200101-000000-abcdef").status == 404


def test_streamed_upload_past_the_limit_is_cut(web, tmp_path):
    """No Content-Length to refuse it by: the upload is counted as it comes."""
    web.login()
    chunk = b"5544999999999\n" * 4096

    def body():
        yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.csv"\r\n\r\n'
        for _ in range(51 * 1024 * 1024 // len(chunk) + 1):
            yield chunk
        yield b"\r\n--b--\r\n"

    headers = {"Content-Type": "multipart/form-data; boundary=b", "X-Batch-Attend": "1"}
    try:
        answer = web.request("POST", "/upload", body=body(), headers=headers)
    except (BrokenPipeError, ConnectionResetError):
        answer = None  # the server answered and hung up while the rest was still coming
    assert answer is None or answer.status == 413
    assert list((tmp_path / "data" / "runs").iterdir()) == []


# --- the token stays on the server ---------------------------------------------------------------


def _every_file_text(folder: Path) -> str:
    texts = []
    for path in folder.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            texts.append(data.decode("latin-1"))
            if data.startswith(b"PK"):
                with zipfile.ZipFile(path) as archive:
                    texts += [
                        archive.read(n).decode("utf-8", "replace") for n in archive.namelist()
                    ]
    return "\n".join(texts)


def test_the_token_appears_in_no_answer_and_no_file(tmp_path):
    with SandboxServer(SandboxState(token=TOKEN)) as sandbox:
        settings = {"base_url": sandbox.base_url, "ticket": "0000"}
        with Web(tmp_path / "data", settings, {"PLUGCHAT_TOKEN": TOKEN}) as web:
            web.login()
            url = web.new_run(SAMPLES / "leads.xlsx")
            page = web.get(url)
            assert "Ana Souza (OP-ANA)" in page.text  # the account's lists, to choose from
            end = web.run_to_end(url, {"pool": ["OP-CARLA"], "department": "DEP-SUPORTE"})
            assert end["counts"] == {"started": 10, "invalid": 1, "skipped": 1}
            for fmt in ("xlsx", "csv"):
                assert web.get(f"{url}/results.{fmt}").status == 200
            web.get(url)
            web.get("/runs")
            web.get("/")
        assert sandbox.state.total_starts() == 10
    assert len(web.seen) >= 10
    for answer in web.seen:
        everything = answer.body.decode("latin-1") + json.dumps(answer.headers)
        assert TOKEN not in everything
        for part in (TOKEN[:8], TOKEN[-8:]):
            assert part not in everything
    assert TOKEN not in _every_file_text(tmp_path / "data")
    stored = json.loads(next((tmp_path / "data").rglob("options.json")).read_text())
    assert stored["choices"] == {"pool": ["OP-CARLA"], "department": "DEP-SUPORTE"}


# --- one engine --------------------------------------------------------------------------------


def test_the_page_and_the_cli_write_the_same_results(web, tmp_path, runner):
    web.login()
    url = web.new_run(SAMPLES / "leads.xlsx")
    end = web.run_to_end(url)
    assert end["state"] == "finished" and end["exit_code"] == 1
    assert end["counts"] == {"started": 9, "invalid": 2, "skipped": 1}
    assert not end["resumable"]  # only invalid rows and a duplicate: nothing more to send
    assert set(end["downloads"]) == {"xlsx", "csv"}
    for fmt in ("xlsx", "csv"):
        page = tmp_path / f"page.{fmt}"
        answer = web.get(end["downloads"][fmt])
        assert answer.status == 200
        assert answer.header("Content-Disposition").startswith("attachment; filename=")
        page.write_bytes(answer.body)
        by_cli = tmp_path / f"cli.{fmt}"
        result = runner.invoke(cli, [str(SAMPLES / "leads.xlsx"), "-o", str(by_cli), "--sandbox"])
        assert result.exit_code == 1, result.output
        assert results_rows(page) == results_rows(by_cli), fmt
        assert len(results_rows(page)) == 12


# --- cancel, resume, twice ---------------------------------------------------------------------


def _wait(condition, timeout=20.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_two_starts_waiting_on_a_runs_workbook_begin_once(web, tmp_path, monkeypatch):
    """Two requests that both wait for the last run's workbook: one begins, the other is told
    the run is going (two at once would write the same results)."""
    from batch_attend.web import runs

    written, calls = threading.Event(), []

    def execute(*args):
        calls.append(args)
        return {"state": "finished", "exit_code": 0}, written.wait

    monkeypatch.setattr(runs, "execute", execute)
    web.login()
    url = web.new_run(leads_csv(tmp_path / "leads.csv", 3))
    assert web.post(url + "/start").status == 200
    run_id = url.rsplit("/", 1)[1]
    _wait(lambda: (job := web.server.jobs.get(run_id)) is not None and job.ended.is_set())
    answers = []
    posts = [
        threading.Thread(target=lambda: answers.append(web.post(url + "/start").status))
        for _ in range(2)
    ]
    for post in posts:
        post.start()
    time.sleep(0.3)  # both are waiting for the workbook
    written.set()
    for post in posts:
        post.join(10)
    assert sorted(answers) == [200, 409]
    _wait(lambda: len(calls) >= 2)  # the one begun calls it from its own thread
    assert len(calls) == 2


def test_cancel_then_resume_sends_nothing_twice(tmp_path):
    leads = leads_csv(tmp_path / "leads.csv", 60)
    with on_slow_sandbox(tmp_path / "data", latency=0.15) as (state, web):
        web.login()
        url = web.new_run(leads)
        assert web.post(url + "/start").status == 200
        _wait(lambda: (w := web.watch(url)) is not None and w.snapshot()["done"] >= 8)
        assert web.post(url + "/start").status == 409  # the same results, twice: refused
        assert web.post(url + "/cancel").status == 200
        assert web.post(url + "/cancel").status in (200, 409)  # a second click is harmless
        end = web.end(url)
        assert (end["state"], end["exit_code"]) == ("interrupted", 130)
        assert end["resumable"]
        first = end["counts"]
        assert 8 <= first.get("started", 0) < 60
        assert first["started"] + first["skipped"] == 60
        rows = results_rows(tmp_path / "data" / "runs" / url.rsplit("/", 1)[1] / "results.csv")
        assert {r["error"].split(":")[0] for r in rows if r["status"] == "skipped"} == {
            "interrupted"
        }
        assert state.total_starts() == first["started"]
        again = web.run_to_end(url)
        assert again["state"] == "finished" and again["exit_code"] == 0
        assert again["counts"] == {"started": 60}
        assert not again["resumable"]
    assert state.total_starts() == 60
    assert set(state.starts.values()) == {1}  # each lead started once
    assert set(state.requests.values()) == {1}  # and sent once: nothing was sent twice


def test_a_run_left_running_by_a_dead_server_resumes(tmp_path):
    data = tmp_path / "data"
    with Web(data, SANDBOX) as web:
        web.login()
        url = web.new_run(SAMPLES / "leads.csv")
        run = web.server.store.get(url.rsplit("/", 1)[1])
        run.status = {"state": "running"}  # what a killed server leaves
        web.server.store.save(run)
    with Web(data, SANDBOX) as web:
        web.login()
        assert "stopped unexpectedly" in web.get("/runs").text
        end = web.run_to_end(url)
        assert end["state"] == "finished" and end["counts"]["started"] == 9


def test_watch_stops_the_engine_once():
    stops = []

    class Engine:
        def stop(self, reason):
            stops.append(reason)

    async def main():
        early, late = Watch(), Watch()
        early.cancel()
        early.attach(Engine())  # a cancel before sending began stops it as it begins
        late.attach(Engine())
        late.cancel()
        late.cancel()  # a second Ctrl-C would exit the process: never sent
        await asyncio.sleep(0.01)
        late.detach()
        late.cancel()

    asyncio.run(main())
    assert stops == ["SIGINT", "SIGINT"]


# --- pages -------------------------------------------------------------------------------------


def test_preview_choices_and_languages(web):
    web.login()
    url = web.new_run(SAMPLES / "leads.csv")
    page = web.get(url).text
    assert "Header row" in page and "matched telefone" in page
    assert "<td>5544999999999</td>" in page  # the first attendances, as they will be started
    answer = web.post(url + "/options", {"operators_column": "Nome"})
    assert answer.status == 200 and "<html" not in answer.text  # the preview it makes, alone
    assert 'id="why-operators">chosen here<' in answer.text
    assert answer.text in web.get(url).text
    answer = web.post(url + "/options", {"phone_column": "Cidade"})
    assert 'data-problem="invalid_phone"' in answer.text and "Invalid phone" in answer.text
    assert web.post(url + "/options", {"distribute": "sideways"}).status == 400
    assert web.post(url + "/options", {"token": "x"}).status == 400
    assert web.post(url + "/options", {"pool": "OP-ANA"}).status == 400
    pt = web.get("/", headers={"Accept-Language": "pt-BR,pt;q=0.9,en;q=0.8"})
    assert '<html lang="pt-BR">' in pt.text
    switch = web.get("/lang/en?next=/runs", headers={"Accept-Language": "pt-BR"})
    assert switch.status == 303 and switch.header("Location") == "/runs"
    assert switch.header("Set-Cookie").startswith("lang=en;")
    both = {"Accept-Language": "pt-BR", "Cookie": f"{web.cookie}; lang=en"}
    english = web.get("/", headers=both, cookie=False)
    assert '<html lang="en">' in english.text
    for elsewhere in ("//evil.example/", "http://evil.example/", "/\\evil.example"):
        answer = web.get(f"/lang/pt_BR?next={elsewhere}")
        assert answer.header("Location") == "/", elsewhere


# --- the command -------------------------------------------------------------------------------


def test_serve_refuses_to_start_without_a_token(runner, tmp_path):
    result = runner.invoke(cli, ["serve", "--data-dir", str(tmp_path / "d")], env=clean_env())
    assert result.exit_code == 2
    assert "no API token" in result.stderr
    assert not (tmp_path / "d").exists()


def test_serve_prints_its_address_and_stops_on_ctrl_c(tmp_path):
    data = tmp_path / "data"
    proc = subprocess.Popen(
        [*PYTHON, "serve", "--sandbox", "--port", "0", "--data-dir", str(data)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean_env(),
    )  # fmt: skip
    try:
        line = proc.stdout.readline()
        match = re.search(r"(http://127\.0\.0\.1:\d+)/\?key=([\w-]{20,})", line)
        assert match, line + proc.stderr.read()
        origin, key = match.groups()
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(origin + "/", timeout=10)
        assert refused.value.code == 403
        with urllib.request.urlopen(f"{origin}/?key={key}", timeout=10) as answer:
            assert answer.status == 200
        assert stat.S_IMODE(data.stat().st_mode) == 0o700
        second = subprocess.run(  # a second server on the same runs would take them for crashed
            [*PYTHON, "serve", "--sandbox", "--port", "0", "--data-dir", str(data)],
            capture_output=True, text=True, env=clean_env(), timeout=30,
        )  # fmt: skip
        assert second.returncode == 2, second.stderr
        assert "another batch-attend serve uses this data directory" in second.stderr
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert key not in err and key not in out


def test_csv_results_follow_the_page_language(web, tmp_path):
    """From a workbook, CSV results are split by ; for Portuguese, as Excel in Brazil expects."""
    web.login()
    url = web.new_run(SAMPLES / "leads.xlsx")
    answer = web.post(url + "/start", {}, headers={"Accept-Language": "pt-BR"})
    assert answer.status == 200
    web.events(url)
    text = web.get(url + "/results.csv").body.decode("utf-8-sig")
    header = next(csv.reader(io.StringIO(text), delimiter=";"))
    assert header[:2] == ["Nome", "Telefone"] and "status" in header
    assert os.path.exists(tmp_path / "data" / "runs" / url.rsplit("/", 1)[1] / "results.xlsx")


def test_the_rows_not_done_are_listed_with_their_reasons_in_the_readers_language(web):
    web.login()
    url = web.new_run(SAMPLES / "leads.xlsx")
    end = web.run_to_end(url)
    rows = {row: (status, error) for row, status, error in end["not_done"]["rows"]}
    assert set(rows) == {7, 8}  # the two invalid rows; the duplicate is not listed
    assert rows[8] == ("invalid", rows[8][1])
    assert rows[8][1].startswith("'12345' has 5 digits")  # the reason, no code
    english = web.get(url).text
    assert "Rows not done" in english and "&#39;12345&#39; has 5 digits" in english
    page = web.get(url, headers={"Accept-Language": "pt-BR"}).text
    assert "Linhas não concluídas" in page
    assert "<td>&#39;12345&#39; tem 5 dígitos" in page and "invalid_phone" not in page


def test_the_ddd_column_can_be_chosen_on_the_page(web, tmp_path):
    leads = write_csv(
        tmp_path / "leads.csv",
        [["Telefone", "Região", "Operadores"], ["99999-8888", "44", "OP-ANA"]],
    )
    web.login()
    url = web.new_run(leads)
    assert 'id="count-ready">0<' in web.get(url).text  # 9 digits, no DDD column known
    assert web.post(url + "/options", {"ddd_column": "Região"}).status == 200
    page = web.get(url).text
    assert 'id="why-ddd">chosen here<' in page and 'id="count-ready">1<' in page
    pt = web.get(url, headers={"Accept-Language": "pt-BR"}).text
    assert '"count-ready">1</b><span>pronta para enviar<' in pt  # one, not "prontas"
    assert '"count-rows">1</b><span>linha<' in pt
    assert web.run_to_end(url)["counts"] == {"started": 1}
    chips = web.get(url, headers={"Accept-Language": "pt-BR"}).text
    assert "<b>1</b> iniciada<" in chips and "<b>0</b> inválidas<" in chips  # plurals
    assert "<b>1</b> started<" in web.get(url).text


def test_the_template_from_the_page_filled_in_runs_as_it_is(web, tmp_path):
    web.login()
    answer = web.get("/template.xlsx")
    assert answer.status == 200
    assert answer.header("Content-Disposition") == 'attachment; filename="leads.xlsx"'
    path = tmp_path / "leads.xlsx"
    path.write_bytes(answer.body)
    book = openpyxl.load_workbook(path)
    guide = " ".join(str(c) for (c,) in book["Instruções"].iter_rows(values_only=True) if c)
    assert "Nova execução" in guide and "batch-attend check" not in guide  # the page's words
    operators = [v for v in next(book["Listas"].iter_cols(values_only=True))[1:] if v]
    assert operators  # the sandbox's, with its ticket
    book["Leads"].append(["Maria", "(44) 99999-0001", operators[0], None])
    book.save(path)
    end = web.run_to_end(web.new_run(path))
    assert (end["state"], end["counts"]) == ("finished", {"started": 1})
    assert not list((tmp_path / "data" / "templates").iterdir())  # nothing left behind


def test_the_preview_shows_the_requests_after_the_whatsapp_checks(web, tmp_path):
    """With Verify WhatsApp chosen, the first requests are those the run will send: the form of
    the number PlugChat has WhatsApp for (the sandbox knows 554499887766 as 5544999887766)."""
    leads = write_csv(
        tmp_path / "leads.csv", [["Telefone", "Operadores"], ["554499887766", "OP-ANA"]]
    )
    web.login()
    url = web.new_run(leads)
    assert "<td>554499887766</td>" in web.get(url).text
    assert web.post(url + "/options", {"verify_whatsapp": True}).status == 200
    assert "<td>5544999887766</td>" in web.get(url).text


def test_the_header_row_can_be_chosen_on_the_page(web, tmp_path):
    rows = [["Lista de novembro", "", ""], ["Telefone", "Operadores", "Cidade"]]
    rows += [["44 99999-8888", "OP-ANA", "Maringá"]]
    web.login()
    url = web.new_run(write_csv(tmp_path / "leads.csv", rows))
    assert '<option value="2" selected>' in web.get(url).text  # found by the phone column
    assert web.post(url + "/options", {"header_row": 1}).status == 200
    assert "No column was recognised as the phone: choose it below." in web.get(url).text
    assert web.post(url + "/options", {"header_row": None}).status == 200
    assert 'id="count-ready">1<' in web.get(url).text
    for wrong in (True, "2", 0):
        assert web.post(url + "/options", {"header_row": wrong}).status == 400


# --- fixes before sending ----------------------------------------------------------------------


def test_fixes_made_on_the_page_are_kept_with_the_run_and_are_what_it_sends(web, tmp_path):
    rows = [["Nome", "Telefone", "Responsável", "Setor"], ["Ana", "12345", "OP-ANA", ""],
            ["Bia", "44999990002", "Zé Ninguém", "Vendas X"], ["Caio", "44999990003", "Zé Ninguém", ""],
            ["Duda", "44999990004", "OP-BRUNO", "Vendas X"]]  # fmt: skip
    web.login()
    url = web.new_run(write_csv(tmp_path / "leads.csv", rows))
    page = web.get(url).text
    assert 'id="count-ready">0<' in page and 'id="count-invalid">4<' in page
    groups = dict(re.findall(r'data-problem="(\w+)"[^>]*>[^<]*<b>(\d+)</b>', page))
    assert groups == {"unknown_operator": "2", "unknown_department": "1", "invalid_phone": "1"}
    assert page.count('data-map-value="Zé Ninguém"') == 1  # one choice for both rows
    only = web.get(url + "?part=preview&problem=unknown_operator").text
    assert re.findall(r'data-edit-row="(\d+)"', only) == ["3", "4"]

    def fix(choice: dict) -> str:
        answer = web.post(url + "/options", choice)
        assert answer.status == 200, answer.text
        return re.search(r'id="count-ready">(\d+)<', answer.text)[1]

    assert fix({"cell_edits": {"2": {"Telefone": "(44) 99999-0001"}}}) == "1"
    assert fix({"value_map": {"operators": {"Zé Ninguém": "OP-CARLA"}}}) == "2"
    assert fix({"value_map": {"department": {"Vendas X": "DEP-VENDAS"}}}) == "4"
    assert fix({"value_map": {"department": {"Vendas X": ""}}}) == "2"  # undone
    assert fix({"value_map": {"department": {"Vendas X": "DEP-VENDAS"}}}) == "4"
    for wrong in ({"cell_edits": {"x": {"Telefone": "1"}}}, {"value_map": {"phone": {"a": "b"}}},
                  {"cell_edits": {"2": {"Telefone": "a\x00b"}}}):  # fmt: skip
        assert web.post(url + "/options", wrong).status == 400
    stored = json.loads(
        (tmp_path / "data" / "runs" / url.rsplit("/", 1)[1] / "options.json").read_text()
    )
    assert stored["choices"] == {
        "cell_edits": {"2": {"Telefone": "(44) 99999-0001"}},
        "value_map": {"operators": {"Zé Ninguém": "OP-CARLA"}, "department": {"Vendas X": "DEP-VENDAS"}},
    }  # fmt: skip
    assert web.run_to_end(url)["counts"] == {"started": 4}
    sent = results_rows(tmp_path / "data" / "runs" / url.rsplit("/", 1)[1] / "results.csv")
    assert [(r["Telefone"], r["Responsável"], r["Setor"]) for r in sent] == [
        ("(44) 99999-0001", "OP-ANA", ""), ("44999990002", "OP-CARLA", "DEP-VENDAS"),
        ("44999990003", "OP-CARLA", ""), ("44999990004", "OP-BRUNO", "DEP-VENDAS"),
    ]  # fmt: skip
    assert (tmp_path / "leads.csv").read_text().count("Zé Ninguém") == 2  # the upload unchanged


def test_the_rows_with_problems_download_in_the_pages_language(web, tmp_path):
    web.login()
    url = web.new_run(SAMPLES / "leads.xlsx")
    answer = web.get(url + "/problems.xlsx", headers={"Accept-Language": "pt-BR"})
    assert answer.status == 200
    assert answer.header("Content-Disposition").endswith('-problems.xlsx"')
    (tmp_path / "p.xlsx").write_bytes(answer.body)
    rows = list(openpyxl.load_workbook(tmp_path / "p.xlsx")["Resultados"].values)
    header = list(rows[0])
    assert [r[header.index("linha")] for r in rows[1:]] == [7, 8]  # only the invalid rows
    assert {r[header.index("situação")] for r in rows[1:]} == {"inválida"}
    assert rows[2][header.index("motivo")].startswith("'12345' tem 5 dígitos")


def test_a_column_of_landlines_is_warned_about(web, tmp_path, runner):
    rows = [["Nome", "Telefone", "Operadores"]]
    rows += [[f"Lead {i}", f"(44) 3025-{1000 + i}", "OP-ANA"] for i in range(3)]
    rows += [["Lead 9", "(44) 99999-0009", "OP-ANA"]]
    leads = write_csv(tmp_path / "leads.csv", rows)
    web.login()
    page = web.get(web.new_run(leads)).text
    assert 'id="count-ready">4<' in page
    assert "3 of the 4 phones to send are landlines, which have no WhatsApp" in page
    result = runner.invoke(cli, ["check", str(leads), "--sandbox"])
    assert "3 of the 4 phones to send are landlines" in result.stdout


def test_a_sheet_without_data_is_no_dead_end(web, tmp_path):
    """The sheet chosen stays chosen, says why it cannot be sent, and another can be chosen."""
    book = tmp_path / "leads.xlsx"
    writer = __import__("xlsxwriter").Workbook(book)
    writer.add_worksheet("Leads").write_row(0, 0, ["Telefone", "Operadores"])
    writer.get_worksheet_by_name("Leads").write_row(1, 0, ["44999990001", "OP-ANA"])
    writer.add_worksheet("Vazia")
    writer.close()
    web.login()
    url = web.new_run(book)
    page = web.post(url + "/options", {"sheet": "Vazia"}).text
    assert '<option value="Vazia" selected>' in page and 'id="preview-error"' in page
    assert '<option value="Leads" >' in page
    assert 'id="count-ready">1<' in web.post(url + "/options", {"sheet": "Leads"}).text


def test_numbers_and_moments_are_written_as_the_reader_writes_them(web, tmp_path, sao_paulo):
    leads = leads_csv(tmp_path / "leads.csv", 1200)
    web.login()
    url = web.new_run(leads)
    run = web.server.store.get(url.rsplit("/", 1)[1])
    day, hour = run.created[8:10], run.created[11:16]
    pt = web.get(url, headers={"Accept-Language": "pt-BR"}).text
    assert 'id="count-rows">1.200<' in pt and "Iniciar 1.200 atendimentos" in pt
    assert re.search(rf"Carregado em {day}/\d\d/20\d\d {hour}", pt)  # local time, dd/mm/yyyy
    english = web.get(url).text
    assert 'id="count-rows">1,200<' in english and "Start 1,200 attendances" in english
