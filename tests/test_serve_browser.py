"""The page in a real browser: headless Chromium (Debian's, driven by Playwright) through
upload → preview → a column changed → start against the sandbox → progress → download, the
download compared with the CLI's results, then the history.

Skipped only where there is no Chromium outside CI; under CI it must run.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import pytest
from playwright.sync_api import sync_playwright

from batch_attend.cli import cli
from tests.conftest import SAMPLES
from tests.test_serve import leads_csv, results_rows
from tests.web_client import CHROMIUM, CHROMIUM_ARGS, KEY, Web, on_slow_sandbox

if not CHROMIUM.exists() and os.environ.get("CI") != "true":
    pytest.skip("no /usr/bin/chromium (CI installs it)", allow_module_level=True)

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def browser():
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def test_upload_preview_start_progress_download_history(browser, tmp_path, runner):
    with Web(tmp_path / "data", {"sandbox": True}) as web:
        context = browser.new_context(
            viewport={"width": 1280, "height": 800}, locale="en-US", accept_downloads=True
        )
        page = context.new_page()
        page.set_default_timeout(20_000)
        page.goto(f"{web.origin}/?key={KEY}")
        page.wait_for_url(f"{web.origin}/")  # the key left the address, kept in a cookie
        assert "key" not in page.url

        page.set_input_files("#file", str(SAMPLES / "leads.xlsx"))
        page.wait_for_url("**/runs/*")
        assert page.input_value("#header-row") == "1"
        assert page.input_value("#column-phone") == "Telefone"
        assert page.input_value("#column-department") == "Departamento"
        counts = {n: page.text_content(f"#count-{n}") for n in ("rows", "ready", "invalid")}
        assert counts == {"rows": "12", "ready": "9", "invalid": "2"}
        assert page.text_content("#count-duplicates") == "1"

        with page.expect_navigation():  # a column changed: the preview says what it makes
            page.select_option("#column-department", "Cidade")
        assert page.text_content("#count-ready") == "0"
        assert "unknown_department" in page.text_content("#rows")
        with page.expect_navigation():
            page.select_option("#column-department", "Departamento")
        assert page.text_content("#count-ready") == "9"
        assert "given by --department-column" in page.text_content("#source")

        page.select_option("#pool", ["OP-CARLA"])  # for the row without operators
        with page.expect_navigation():  # the defaults shown in the preview too
            page.click("#apply")
        assert page.text_content("#count-ready") == "10"
        assert page.eval_on_selector("#pool", "s => [...s.selectedOptions].map(o => o.value)") == [
            "OP-CARLA"
        ]
        page.evaluate("window.stayed = true")
        page.click("#start")
        page.wait_for_selector("#done:not([hidden])")
        assert page.evaluate("window.stayed") is True  # no reload: the events drove the page
        assert page.text_content("#state") == "finished"
        chips = page.text_content("#counts")
        assert "10 started" in " ".join(chips.split()) and "1 invalid" in " ".join(chips.split())
        assert page.is_hidden("#cancel")
        not_done = page.locator("#not-done-rows tr")  # drawn from the last event, not reloaded
        assert not_done.count() == 1
        assert "invalid_phone: '12345' has 5 digits" in not_done.first.text_content()

        with page.expect_download() as download:
            page.click("#download-xlsx")
        by_page = tmp_path / "page.xlsx"
        download.value.save_as(by_page)
        by_cli = tmp_path / "cli.xlsx"
        args = [str(SAMPLES / "leads.xlsx"), "-o", str(by_cli), "--sandbox"]
        args += ["--department-column", "Departamento", "--pool", "OP-CARLA"]
        with ThreadPoolExecutor(1) as thread:  # Playwright's loop holds this thread
            result = thread.submit(runner.invoke, cli, args).result()
        assert result.exit_code == 1, result.output
        summary = result.stderr.splitlines()[-1]
        assert summary.startswith("12 rows: 10 started, 1 invalid, 1 skipped"), result.stderr
        assert results_rows(by_page) == results_rows(by_cli)

        page.click("text=History")
        page.wait_for_url("**/runs")
        row = page.locator("#history tbody tr").first
        assert "leads.xlsx" in row.text_content() and "finished" in row.text_content()
        assert page.locator("#history tbody tr").count() == 1
        assert row.locator("a.button").all_text_contents() == ["XLSX", "CSV"]
        context.close()


def test_a_run_goes_on_when_the_tab_closes_and_the_page_shows_it_again(browser, tmp_path):
    leads = leads_csv(tmp_path / "leads.csv", 80)
    with on_slow_sandbox(tmp_path / "data", latency=0.25) as (state, web):  # 8 at a time: 2.5 s
        context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-US")
        page = context.new_page()
        page.set_default_timeout(20_000)
        page.goto(f"{web.origin}/?key={KEY}")
        page.wait_for_url(f"{web.origin}/")
        page.set_input_files("#file", str(leads))
        page.wait_for_url("**/runs/*")
        run_url = page.url
        page.click("#start")
        page.wait_for_selector("#cancel:not([hidden])")
        page.close()  # the tab closed mid-run
        assert state.total_starts() < 80
        again = context.new_page()
        again.goto(f"{web.origin}/runs")
        assert "running" in again.text_content("#history tbody tr") or state.total_starts() == 80
        again.goto(run_url)
        again.wait_for_selector("#done:not([hidden])")
        assert again.text_content("#state") == "finished"
        assert "80 started" in " ".join(again.text_content("#counts").split())
        context.close()
    assert state.total_starts() == 80 and set(state.requests.values()) == {1}
