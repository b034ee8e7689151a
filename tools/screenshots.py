"""Screenshots of ``batch-attend serve`` for the README, one per step, on a desktop (1280×800)
and a phone (390×844) screen.

    python tools/screenshots.py [--lang en|pt_BR] [--out docs/screenshots]

Starts a sandbox (slowed down, so that progress can be seen) and the web app on 127.0.0.1,
drives Debian's Chromium through upload → preview → fixes → progress → done → history, and
writes upload.png, preview.png, fix.png, progress.png, done.png and history.png (``-phone``
for the phone's, ``-pt`` for Portuguese). No internet is needed.
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from playwright.sync_api import sync_playwright  # noqa: E402

from batch_attend.sandbox import (  # noqa: E402
    SANDBOX_ACCOUNT_ID,
    SANDBOX_TICKET,
    BackgroundServer,
    SandboxServer,
    SandboxState,
)
from batch_attend.web.app import make_app  # noqa: E402
from tests.web_client import CHROMIUM, CHROMIUM_ARGS  # noqa: E402

KEY = "screenshots"
SCREENS = {"": {"width": 1280, "height": 800}, "-phone": {"width": 390, "height": 844}}


def sheet(folder: Path) -> Path:
    """The sample leads, and three rows naming an operator and a department as people do."""
    rows = list(csv.reader((REPO / "samples" / "leads.csv").open(encoding="utf-8")))
    rows += [
        ["Renata Lima", "(44) 99811-2233", "Zé Ninguém", "Vendas SP", "Maringá", ""],
        ["Otávio Reis", "(44) 99811-2244", "Zé Ninguém", "", "Maringá", ""],
        ["Sônia Prado", "(41) 99811-2255", "OP-BRUNO", "Vendas SP", "Curitiba", ""],
    ]
    path = folder / "leads-dezembro.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows(rows)
    return path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lang", choices=["en", "pt_BR"], default="en")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    lang = "-pt" if args.lang == "pt_BR" else ""
    locale = "pt-BR" if args.lang == "pt_BR" else "en-US"
    for screen, viewport in SCREENS.items():  # each on a server of its own: a fresh ledger
        with (
            tempfile.TemporaryDirectory() as data,
            SandboxServer(SandboxState(latency=0.6, jitter=1.6)) as sandbox,
            BackgroundServer(
                make_app(
                    Path(data),
                    KEY,
                    {"base_url": sandbox.base_url, "ticket": SANDBOX_TICKET},
                    {
                        "PLUGCHAT_TOKEN": sandbox.state.token,
                        "PLUGCHAT_ACCOUNT_ID": SANDBOX_ACCOUNT_ID,
                    },
                )
            ) as web,
            sync_playwright() as playwright,
        ):
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            leads = sheet(Path(data))
            page = browser.new_page(viewport=viewport, locale=locale)
            page.set_default_timeout(30_000)
            page.on("dialog", lambda dialog: dialog.accept())

            def shot(name: str, page=page, screen=screen) -> None:
                path = args.out / f"{name}{screen}{lang}.png"
                page.screenshot(path=path)
                print(path.relative_to(REPO) if path.is_relative_to(REPO) else path)

            def previewed(page=page) -> None:
                page.wait_for_selector("#preview:not([aria-busy])", state="attached")

            page.goto(f"{web.origin}/?key={KEY}")
            page.wait_for_url(f"{web.origin}/")
            shot("upload")
            page.set_input_files("#file", str(leads))
            page.wait_for_url("**/runs/*")
            shot("preview")
            page.evaluate("document.getElementById('problems').scrollIntoView()")
            shot("fix")
            page.select_option("select[data-map-role=operators]", "OP-ANA")
            previewed()
            page.select_option("select[data-map-role=department]", "DEP-VENDAS")
            previewed()
            for member in ("OP-ANA", "OP-CARLA"):
                page.check(f"input[name=pool][value={member}]")
                previewed()
            page.click("#start")
            started = page.locator("#counts [data-status=started] b")
            while int(started.text_content() or 0) < 4:  # the page's CSP allows no eval
                time.sleep(0.05)
            shot("progress")
            page.wait_for_selector("#done:not([hidden])")
            page.wait_for_selector("#download-xlsx:not([hidden])")
            page.evaluate("document.getElementById('progress').scrollIntoView()")
            shot("done")
            page.goto(f"{web.origin}/runs")
            shot("history")
            browser.close()


if __name__ == "__main__":
    main()
