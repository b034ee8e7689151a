"""``batch-attend serve`` kept safe and small: the cookie bound to its port, addresses other
machines can open announced with a warning, History a page at a time, one ledger per account
for every upload, and a run's personal data deleted on request or after some days."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from batch_attend.web import runs as run_folders
from tests.conftest import PYTHON, clean_env, write_csv
from tests.web_client import KEY, Web, on_slow_sandbox

SANDBOX = {"sandbox": True}


def leads(path, count=3):
    rows = [["Nome", "Telefone", "Operadores"]]
    rows += [[f"Lead {i}", f"5544997{i:06d}", "OP-ANA"] for i in range(count)]
    return write_csv(path, rows)


def test_a_cookie_of_one_server_opens_no_other_on_the_same_host(tmp_path):
    with Web(tmp_path / "a", SANDBOX) as first, Web(tmp_path / "b", SANDBOX) as second:
        first.login()
        second.cookie = first.cookie.replace(
            first.origin.rsplit(":", 1)[1], second.origin.rsplit(":", 1)[1]
        )  # the same value under the other port's name: still refused
        assert second.get("/").status == 403
        second.cookie = first.cookie
        assert second.get("/").status == 403
        assert first.get("/").status == 200


def test_listening_beyond_loopback_warns_and_gives_addresses_others_can_open(tmp_path):
    proc = subprocess.Popen(
        [*PYTHON, "serve", "--sandbox", "--host", "0.0.0.0", "--port", "0",
         "--data-dir", str(tmp_path / "data")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean_env(),
    )  # fmt: skip
    try:
        line = proc.stdout.readline()
    finally:
        proc.terminate()
        _out, err = proc.communicate(timeout=20)
    assert "unencrypted" in err and "0.0.0.0" in err
    assert line.startswith("batch-attend serving on http://") and "0.0.0.0" not in line
    assert "?key=" in line


def test_history_is_read_a_page_at_a_time(tmp_path, monkeypatch):
    with Web(tmp_path / "data", SANDBOX) as web:
        web.login()
        store = web.server.store
        for i in range(120):
            run = run_folders.Run(f"20260101-0000{i // 60:02d}-{i:06x}"[:22], None, "x.csv",
                                  ".csv", "2026-01-01T00:00:00-03:00")  # fmt: skip
            run.folder = store.root / run.id
            run.folder.mkdir()
            run.status = {"state": "finished", "counts": {"started": 1}}
            store.save(run)
        reads = []
        real = run_folders._read_json
        monkeypatch.setattr(run_folders, "_read_json", lambda p: reads.append(p) or real(p))
        first = web.get("/runs")
        assert first.status == 200 and first.text.count("data-run=") == 50
        assert len(reads) == 2 * 50  # options and status of the page's runs only
        last = web.get("/runs?page=3")
        assert last.text.count("data-run=") == 20 and "Page 3 of 3" in last.text
        reads.clear()
        assert web.get("/").status == 200 and len(reads) == 2 * 5


def test_a_sheet_uploaded_again_shares_its_accounts_ledger(tmp_path):
    sheet = leads(tmp_path / "leads.csv")
    with on_slow_sandbox(tmp_path / "data", 0.0) as (state, web):
        web.login()
        first = web.run_to_end(web.new_run(sheet))
        assert first["counts"] == {"started": 3}
        again = web.run_to_end(web.new_run(sheet))
        assert again["counts"] == {"started": 3}  # the ledger's outcome, nothing sent
        assert state.total_starts() == 3 and sum(state.requests.values()) == 3
        assert (tmp_path / "data" / "ledger.journal").exists()


def test_a_run_is_deleted_on_request_but_not_while_it_runs(tmp_path):
    with on_slow_sandbox(tmp_path / "data", 0.5) as (_state, web):
        web.login()
        url = web.new_run(leads(tmp_path / "leads.csv", 20))
        folder = web.server.store.root / url.rsplit("/", 1)[1]
        assert web.post(url + "/start").status == 200
        assert web.post(url + "/delete").status == 409
        assert web.post(url + "/cancel").status == 200
        web.events(url)
        assert web.post(url + "/delete").status == 200
        assert not folder.exists() and web.get(url).status == 404
        assert "data-run" not in web.get("/runs").text


def test_keep_days_deletes_old_runs_by_itself(tmp_path):
    data = tmp_path / "data"
    with Web(data, SANDBOX) as web:
        web.login()
        recent = web.new_run(leads(tmp_path / "leads.csv")).rsplit("/", 1)[1]
    old = data / "runs" / "20200101-000000-abcdef"
    old.mkdir()
    (old / "options.json").write_text(json.dumps({"name": "old.csv", "ext": ".csv"}))
    from batch_attend.sandbox import BackgroundServer
    from batch_attend.web.app import make_app

    with BackgroundServer(make_app(data, KEY, SANDBOX, {}, keep_days=30)):
        for _ in range(50):
            if not old.exists():
                break
            time.sleep(0.1)
    assert not old.exists() and (data / "runs" / recent).exists()


@pytest.mark.parametrize("page", ["0", "x", "-1", "999"])
def test_any_history_page_asked_answers(tmp_path, page):
    with Web(tmp_path / "data", SANDBOX) as web:
        web.login()
        assert web.get(f"/runs?page={page}").status == 200
