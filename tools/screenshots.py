"""Screenshots of ``batch-attend serve`` at 1280×800, one per step, for the README.

    python tools/screenshots.py [--lang en|pt_BR] [--out docs/screenshots]

Starts a sandbox (slowed down, so that progress can be seen) and the web app on 127.0.0.1,
drives Debian's Chromium through upload → preview → progress → done → history, and writes
upload.png, preview.png, progress.png, done.png and history.png (``-pt`` before ``.png`` for
Portuguese). No internet is needed.
"""

from __future__ import annotations

import argparse
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lang", choices=["en", "pt_BR"], default="en")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    suffix = "-pt" if args.lang == "pt_BR" else ""
    locale = "pt-BR" if args.lang == "pt_BR" else "en-US"
    state = SandboxState(latency=0.6, jitter=1.6)
    with (
        tempfile.TemporaryDirectory() as data,
        SandboxServer(state) as sandbox,
        BackgroundServer(
            make_app(
                Path(data),
                KEY,
                {"base_url": sandbox.base_url, "ticket": SANDBOX_TICKET},
                {"PLUGCHAT_TOKEN": sandbox.token, "PLUGCHAT_ACCOUNT_ID": SANDBOX_ACCOUNT_ID},
            )
        ) as web,
        sync_playwright() as playwright,
    ):
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800}, locale=locale)
        page.set_default_timeout(30_000)

        def shot(name: str) -> None:
            path = args.out / f"{name}{suffix}.png"
            page.screenshot(path=path)
            print(path.relative_to(REPO) if path.is_relative_to(REPO) else path)

        page.goto(f"{web.origin}/?key={KEY}")
        page.wait_for_url(f"{web.origin}/")
        shot("upload")
        page.set_input_files("#file", str(REPO / "samples" / "leads.xlsx"))
        page.wait_for_url("**/runs/*")
        shot("preview")
        page.select_option("#pool", ["OP-ANA", "OP-CARLA"])
        page.click("#start")
        started = page.locator("#counts [data-status=started] b")
        while int(started.text_content() or 0) < 4:  # the page's CSP allows no eval
            time.sleep(0.05)
        shot("progress")
        page.wait_for_selector("#done:not([hidden])")
        shot("done")
        page.goto(f"{web.origin}/")  # a second upload, not started yet, for the history
        page.set_input_files("#file", str(REPO / "samples" / "leads.csv"))
        page.wait_for_url("**/runs/*")
        page.goto(f"{web.origin}/runs")
        shot("history")
        browser.close()


if __name__ == "__main__":
    main()
