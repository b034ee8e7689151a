"""nginx with ``limit_req`` in front of a server on 127.0.0.1: the rate limiter most often found
in front of an API, for the tests and ``benchmarks/rate_limit.py``.

Everything it writes (configuration, pid, logs, temp folders) stays in a folder of its own; it
listens on a free loopback port and is stopped when the block ends, whatever happened.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

NGINX = Path(shutil.which("nginx") or "/usr/sbin/nginx")

CONFIG = """
daemon off;
master_process off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    log_format timed '$msec $status $request_method $uri';
    access_log {dir}/access.log timed;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    limit_req_zone $binary_remote_addr zone=api:1m rate={rate}r/s;
    {status}
    upstream api {{ server {upstream}; keepalive 64; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            limit_req zone=api{burst};
            proxy_pass http://api;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
"""


class Logged(NamedTuple):
    at: float  # when nginx logged it (time.time(): the answer's end)
    status: int
    method: str
    path: str


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Nginx:
    """``with Nginx(upstream="127.0.0.1:PORT", rate=50) as nginx: nginx.origin``.

    ``burst``: ``burst=N nodelay``; ``status``: what a refusal answers (nginx's own 503, or
    429 with ``limit_req_status``). :meth:`log` is every request it answered, in order.
    """

    def __init__(self, upstream: str, rate: int, *, burst: int = 0, status: int = 503) -> None:
        self.upstream, self.rate, self.burst, self.status = upstream, rate, burst, status
        self.port = 0
        self._dir: Path | None = None
        self._proc: subprocess.Popen | None = None

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Nginx:
        self._dir = Path(tempfile.mkdtemp(prefix="batch-attend-nginx-"))
        try:
            self._start()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _start(self) -> None:
        for _attempt in range(5):  # a free port may be taken between looking and listening
            self.port = free_port()
            (self._dir / "nginx.conf").write_text(
                CONFIG.format(
                    dir=self._dir,
                    rate=self.rate,
                    status="" if self.status == 503 else f"limit_req_status {self.status};",
                    upstream=self.upstream,
                    port=self.port,
                    burst=f" burst={self.burst} nodelay" if self.burst else "",
                )
            )
            self._proc = subprocess.Popen(
                [str(NGINX), "-p", str(self._dir), "-e", str(self._dir / "error.log"),
                 "-c", str(self._dir / "nginx.conf")],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            deadline = time.monotonic() + 10
            while self._proc.poll() is None and time.monotonic() < deadline:
                with (
                    contextlib.suppress(OSError),
                    socket.create_connection(("127.0.0.1", self.port), timeout=0.5),
                ):
                    return
                time.sleep(0.02)
            self._stop()
        errors = (self._dir / "error.log").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"nginx did not start: {errors}")

    def _stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

    def __exit__(self, *exc_info) -> None:
        try:
            self._stop()
        finally:
            if self._dir is not None:
                shutil.rmtree(self._dir, ignore_errors=True)

    def log(self) -> list[Logged]:
        lines = (self._dir / "access.log").read_text().splitlines()
        return [Logged(float(t), int(s), m, p) for t, s, m, p in (ln.split() for ln in lines)]


def available() -> bool:
    return NGINX.is_file() and os.access(NGINX, os.X_OK)
