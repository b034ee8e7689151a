"""A web app of ``batch-attend serve`` on 127.0.0.1 for tests, with a plain HTTP client that
keeps every answer (to look for what must never appear in one)."""

from __future__ import annotations

import contextlib
import http.client
import json
from dataclasses import dataclass
from pathlib import Path

from batch_attend.sandbox import BackgroundServer, SandboxServer, SandboxState
from batch_attend.web.app import SERVER, make_app

KEY = "test-key-Zq81"

#: Debian's Chromium, as the browser tests and tools/screenshots.py start it (without the
#: background-networking flags it tries the closed network at every start).
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@dataclass
class Answer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    def json(self):
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


def multipart(filename: str, data: bytes, field: str = "file") -> tuple[bytes, str]:
    boundary = "batchattendtestboundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; '
            f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


class Web:
    """``with Web(data_dir, settings, environ) as web: web.login(); web.upload(...)``."""

    def __init__(self, data_dir: Path, settings: dict, environ: dict | None = None) -> None:
        self.app = make_app(data_dir, KEY, settings, environ or {})
        self.background = BackgroundServer(self.app)
        self.cookie: str | None = None
        self.seen: list[Answer] = []

    def __enter__(self) -> Web:
        self.background.__enter__()
        return self

    def __exit__(self, *exc_info) -> None:
        self.background.__exit__(*exc_info)

    @property
    def origin(self) -> str:
        return self.background.origin

    @property
    def server(self):
        return self.app[SERVER]

    def request(self, method: str, path: str, body=None, headers=None, cookie=True) -> Answer:
        sent = dict(headers or {})
        if cookie and self.cookie:
            sent["Cookie"] = self.cookie
        connection = http.client.HTTPConnection("127.0.0.1", self.background.port, timeout=60)
        try:
            connection.request(method, path, body=body, headers=sent)
            response = connection.getresponse()
            answer = Answer(response.status, response.getheaders(), response.read())
        finally:
            connection.close()
        self.seen.append(answer)
        return answer

    def get(self, path: str, **kw) -> Answer:
        return self.request("GET", path, **kw)

    def post(self, path: str, data=None, headers=None, **kw) -> Answer:
        sent = {"X-Batch-Attend": "1", "Content-Type": "application/json", **(headers or {})}
        body = data if isinstance(data, bytes) else json.dumps(data or {})
        return self.request("POST", path, body=body, headers=sent, **kw)

    def login(self) -> Answer:
        answer = self.get(f"/?key={KEY}", cookie=False)
        assert answer.status == 200, answer.text
        self.cookie = answer.header("Set-Cookie").split(";")[0]
        return answer

    def upload(self, filename: str, data: bytes, headers=None) -> Answer:
        body, kind = multipart(filename, data)
        return self.post("/upload", body, headers={"Content-Type": kind, **(headers or {})})

    def new_run(self, path: Path, filename: str | None = None) -> str:
        answer = self.upload(filename or path.name, path.read_bytes())
        assert answer.status == 200, answer.text
        return answer.json()["url"]

    def events(self, url: str) -> list[tuple[str, dict]]:
        """Every event of the run's stream, until its end."""
        text = self.get(url + "/events").text
        found = []
        for block in text.split("\n\n"):
            lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
            if "event" in lines:
                found.append((lines["event"], json.loads(lines["data"])))
        return found

    def run_to_end(self, url: str, choices: dict | None = None) -> dict:
        """How the run ended, with the files to download once both are written."""
        answer = self.post(url + "/start", choices or {})
        assert answer.status == 200, answer.text
        return self.end(url)

    def end(self, url: str) -> dict:
        events = self.events(url)
        assert [kind for kind, _data in events[-2:]] == ["end", "files"]
        return {**events[-2][1], "downloads": events[-1][1]}

    def watch(self, url: str):
        with contextlib.suppress(KeyError):
            return self.server.jobs[url.rsplit("/", 1)[1]].watch
        return None


@contextlib.contextmanager
def on_slow_sandbox(data_dir: Path, latency: float):
    """A page whose runs go to a sandbox answering after ``latency`` seconds (slow enough to
    watch and cancel); yields the sandbox's state (what it was sent) and the page."""
    from tests.conftest import TOKEN

    state = SandboxState(token=TOKEN, latency=latency)
    with (
        SandboxServer(state) as sandbox,
        Web(data_dir, {"base_url": sandbox.base_url}, {"PLUGCHAT_TOKEN": TOKEN}) as web,
    ):
        yield state, web
