"""Rate limiters in front of the API: the sandbox's own (nginx's rules), nginx itself, and
refusals of the lists, the status and the phone checks. Loopback only, a few seconds each."""

from __future__ import annotations

import collections
import json
import os
import subprocess
from collections import Counter

import pytest
from aiohttp import web

from batch_attend.cli import cli
from batch_attend.sandbox import SANDBOX_ACCOUNT_ID, BackgroundServer, SandboxServer, SandboxState
from batch_attend.sandbox import make_app as sandbox_app
from tests import nginx
from tests.conftest import PYTHON, TOKEN, clean_env, read_results_csv, write_csv


def leads(tmp_path, n, operators="OP-ANA", start=0):
    rows = [["Telefone", "Operadores"], *[[f"55449{start + i:08d}", operators] for i in range(n)]]
    return write_csv(tmp_path / "leads.csv", rows)


@pytest.mark.parametrize("status", [503, 429])
def test_no_row_fails_because_of_the_limiter_even_without_retries(runner, tmp_path, status):
    """Refusals while the API takes requests spend no retry (--retries 0)."""
    state = SandboxState(token=TOKEN, rate_limit=40, limit_status=status, latency=0.02)
    with SandboxServer(state) as sandbox:
        result = runner.invoke(
            cli,
            [str(leads(tmp_path, 80)), "-o", str(tmp_path / "r.csv"), "-c", "16", "--retries",
             "0", "--summary-json", str(tmp_path / "s.json")],
            env={"PLUGCHAT_TOKEN": TOKEN, "PLUGCHAT_BASE_URL": sandbox.base_url},
        )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert {r["status"] for r in read_results_csv(tmp_path / "r.csv")} == {"started"}
    facts = json.loads((tmp_path / "s.json").read_text())
    assert facts["rate_limited"] == state.answers[str(status)] > 0  # it was pushed back
    assert set(state.starts.values()) == {1}


def refusing_gets(state: SandboxState, status: int, times: int = 2):
    """The sandbox, but every GET path refused ``times`` times first (no Retry-After); and
    how often each path was asked."""
    seen: Counter = Counter()

    @web.middleware
    async def refuse(request, handler):
        if request.method == "GET" and not request.path.startswith("/_sandbox"):
            seen[request.path] += 1
            if seen[request.path] <= times:
                return web.json_response({"error": "too many requests"}, status=status)
        return await handler(request)

    app = sandbox_app(state)
    app.middlewares.append(refuse)
    return app, seen


@pytest.mark.parametrize("status", [429, 503])
def test_a_refused_get_waits_and_is_asked_again_as_a_start_is(runner, tmp_path, status):
    """The WhatsApp status, the departments, the operators, who is online and phone-exists."""
    state = SandboxState(token=TOKEN)
    app, seen = refusing_gets(state, status)
    with BackgroundServer(app) as server:
        source = write_csv(
            tmp_path / "leads.csv",
            [["Telefone", "Operadores", "Departamento"], ["5544999990001", "Ana Souza", "Vendas"]],
        )
        result = runner.invoke(
            cli,
            [str(source), "-o", str(tmp_path / "r.csv"), "--ticket", "0000", "--online-only",
             "--account-id", SANDBOX_ACCOUNT_ID, "--verify-whatsapp", "--backoff", "0.01"],
            env={"PLUGCHAT_TOKEN": TOKEN, "PLUGCHAT_BASE_URL": server.origin + "/api/integrations"},
        )  # fmt: skip
        asked = dict(seen)
    assert result.exit_code == 0, result.stderr
    assert [r["status"] for r in read_results_csv(tmp_path / "r.csv")] == ["started"]
    assert {
        "/api/whatsapp/status",
        "/api/integrations/departments",
        "/api/operator/get-all",
        "/api/account/get-operators-online",
        "/api/whatsapp/phone-exists/5544999990001",
    } <= {path for path, n in asked.items() if n == 3}


def test_check_and_the_lists_wait_for_a_refused_get_too(runner, tmp_path):
    app, _seen = refusing_gets(SandboxState(token=TOKEN), 429)
    with BackgroundServer(app) as server:
        env = {"PLUGCHAT_TOKEN": TOKEN, "PLUGCHAT_BASE_URL": server.origin + "/api/integrations"}
        listed = runner.invoke(cli, ["departments", "--format", "json"], env=env)
        source = leads(tmp_path, 2)
        checked = runner.invoke(cli, ["check", str(source), "--ticket", "0000"], env=env)
    assert listed.exit_code == 0, listed.stderr
    assert "DEP-VENDAS" in listed.stdout
    assert checked.exit_code == 0, checked.stdout + checked.stderr


# --- nginx's limit_req ------------------------------------------------------------------------

if not nginx.available() and os.environ.get("CI") != "true":
    NGINX = pytest.mark.skip(reason="no nginx (CI installs it)")
else:
    NGINX = pytest.mark.timeout(60)

RATE = 50  # requests a second nginx allows
SETTLE = 1.5  # seconds from the first start before the rate is judged


@NGINX
@pytest.mark.parametrize(
    ("status", "burst"), [(503, 0), (429, 0), (503, 10)], ids=["503", "429", "503-burst"]
)
def test_behind_nginx_limit_req_a_run_settles_at_its_rate_and_no_row_fails(tmp_path, status, burst):
    """The real command line against the sandbox (50 ms answers) behind nginx at 50/s, every
    path limited: the old code reached a few % of the rate, or failed rows."""
    rows = 4 * RATE
    state = SandboxState(token=TOKEN, latency=0.05, keep_log=False)
    with (
        SandboxServer(state) as sandbox,
        nginx.Nginx(f"127.0.0.1:{sandbox.port}", RATE, burst=burst, status=status) as proxy,
    ):
        run = subprocess.run(
            [*PYTHON, leads(tmp_path, rows), "-o", tmp_path / "r.csv", "-c", "32", "-q"],
            env=clean_env(PLUGCHAT_TOKEN=TOKEN, PLUGCHAT_BASE_URL=proxy.origin + "/api/integrations"),
            capture_output=True, text=True, timeout=45,
        )  # fmt: skip
        log = proxy.log()
    assert run.returncode == 0, run.stderr
    results = read_results_csv(tmp_path / "r.csv")
    assert collections.Counter(r["status"] for r in results) == {"started": rows}
    starts = [e for e in log if e.path.endswith("/start-attendance")]
    taken = sorted(e.at for e in starts if e.status == 200)
    refusals = sum(e.status == status for e in starts)
    assert len(taken) == rows and set(state.starts.values()) == {1}
    settled = [t for t in taken if t >= starts[0].at + SETTLE]
    rate = (len(settled) - 1) / (settled[-1] - settled[0])
    assert rate >= 0.6 * RATE, f"{rate:.1f}/s"  # the old code: 1–3% (429), 44% (503)
    assert refusals <= 0.15 * len(starts), f"{refusals} of {len(starts)} refused"
