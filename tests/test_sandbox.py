"""The sandbox answers as the vendor's page says, over real HTTP on 127.0.0.1."""

import json
import time
import urllib.error
import urllib.request

import pytest

from batch_attend import sandbox as sandbox_module
from batch_attend.cli import cli
from batch_attend.leads import normalize_phones
from batch_attend.sandbox import (
    NO_WHATSAPP,
    ONLY_OTHER_FORM,
    SANDBOX_ACCOUNT_ID,
    Fault,
    SandboxServer,
    SandboxState,
)
from tests.conftest import SAMPLES, TOKEN, standalone_sandbox


def call(url, method="POST", body=None, headers=None, timeout=5):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def start(sandbox, body, token=TOKEN, content_type="application/json"):
    headers = {"Content-Type": content_type} if content_type else {}
    if token is not None:
        headers["Authorization"] = token
    return call(sandbox.base_url + "/start-attendance", body=body, headers=headers)


def start_with_headers(sandbox, body):
    request = urllib.request.Request(
        sandbox.base_url + "/start-attendance",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": TOKEN},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers)


BODY = {"phone": "554499999999", "operators": ["OP-ANA"]}


def test_first_start_answers_true_then_progress_with_stable_number(sandbox):
    assert start(sandbox, BODY) == (200, b"true")
    status, raw = start(sandbox, {"phone": "554499999999", "operators": ["OP-BRUNO"]})
    again = json.loads(raw)
    assert status == 200
    assert again["status"] == "progress"
    assert again["message"] == "chat is already in service"
    assert again["operators"] == [{"id": "OP-ANA", "name": "Ana Souza"}]
    assert json.loads(start(sandbox, BODY)[1])["attendanceNumber"] == again["attendanceNumber"]
    assert sandbox.state.starts == {"554499999999": 1}


@pytest.mark.parametrize("token", [None, "wrong", f"Bearer {TOKEN}"])
def test_missing_or_wrong_token_is_401(sandbox, token):
    assert start(sandbox, BODY, token=token)[0] == 401
    assert sandbox.state.starts == {}


def test_other_methods_are_405(sandbox):
    status, _ = call(
        sandbox.base_url + "/start-attendance", method="GET", headers={"Authorization": TOKEN}
    )
    assert status == 405


@pytest.mark.parametrize("content_type", [None, "text/plain"])
def test_missing_json_content_type_is_415(sandbox, content_type):
    assert start(sandbox, BODY, content_type=content_type)[0] == 415


@pytest.mark.parametrize(
    "body",
    [{"phone": "554499999999"}, {"phone": "554499999999", "operators": []}, {"operators": ["A"]},
     {"phone": "+55 44", "operators": ["A"]}, {"phone": "554499999999", "operators": ["A"], "departmentId": None}],
)  # fmt: skip
def test_malformed_bodies_are_400(sandbox, body):
    assert start(sandbox, body)[0] == 400


def test_fault_counts_run_out():
    state = SandboxState(token=TOKEN, faults={"554499999999": Fault.parse("fail:2")})
    with SandboxServer(state) as sandbox:
        assert [start(sandbox, BODY)[0] for _ in range(3)] == [500, 500, 200]
    assert state.starts == {"554499999999": 1}


@pytest.mark.parametrize(
    ("burst", "status", "retry_after", "header"),
    [(0, 503, "none", None), (2, 503, "none", None), (0, 429, "seconds", "1")],
)
def test_rate_limit_is_nginx_leaky_bucket(burst, status, retry_after, header):
    """A start closer than 1/rate to the last one let through is refused (burst: that many
    more at once), the refusal counting for nothing; at 1/rate apart, all go through."""
    state = SandboxState(
        token=TOKEN, rate_limit=5, burst=burst, limit_status=status, retry_after=retry_after
    )
    with SandboxServer(state) as sandbox:
        body = lambda i: {"phone": f"5544999999{i:03d}", "operators": ["OP-ANA"]}  # noqa: E731
        answers = [start_with_headers(sandbox, body(i)) for i in range(burst + 3)]
        time.sleep(0.25)
        spaced = []
        for i in range(3):
            spaced.append(start_with_headers(sandbox, body(100 + i))[0])
            time.sleep(0.25)
    assert [a[0] for a in answers] == [200] * (burst + 1) + [status] * 2
    assert answers[-1][1].get("Retry-After") == header
    assert spaced == [200, 200, 200]


@pytest.mark.parametrize(
    ("body", "unknown"),
    [
        ({"operators": ["OP-ANA", "OP-NOBODY"]}, "OP-NOBODY"),
        ({"operators": ["OP-ANA"], "departmentId": "DEP-NONE"}, "DEP-NONE"),
    ],
)
def test_ids_the_account_does_not_have_are_refused(sandbox, body, unknown):
    status, raw = start(sandbox, {"phone": "5544999999999", **body})
    assert (status, json.loads(raw)) == (400, {"error": f"not found: {unknown}"})
    assert sandbox.state.attendances == {}
    assert start(sandbox, {"phone": "5544999999999", "operators": ["OP-DIEGO"]})[0] == 200


def test_unknown_fault_is_refused():
    with pytest.raises(ValueError, match="unknown fault"):
        Fault.parse("explode")


def test_departments_and_operators_endpoints(sandbox):
    status, raw = call(
        sandbox.base_url + "/departments", method="GET", headers={"Authorization": TOKEN}
    )
    assert status == 200 and {"active", "id", "name", "createdAt"} <= set(json.loads(raw)[0])
    status, raw = call(
        sandbox.origin + "/api/operator/get-all",
        method="GET",
        headers={"Authorization": TOKEN, "Ticket": "0000"},
    )
    assert status == 200 and "departaments" in json.loads(raw)[0]


def get(sandbox, path, token=TOKEN):
    """GET a path on the sandbox's host; the JSON answer (or None) with the status."""
    headers = {} if token is None else {"Authorization": token}
    status, raw = call(sandbox.origin + path, method="GET", headers=headers)
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, None


CONNECTED = {"connected": True, "session": True, "smartphoneConnected": True, "error": ""}
DISCONNECTED = {
    "connected": False,
    "session": False,
    "smartphoneConnected": False,
    "error": "You are not connected.",
}
ONLINE_PATH = f"/api/account/get-operators-online?id={SANDBOX_ACCOUNT_ID}"


@pytest.mark.parametrize(
    "path",
    ["/api/whatsapp/status", "/api/whatsapp/phone-exists/5544999999999", ONLINE_PATH],
)
@pytest.mark.parametrize("token", [None, "wrong"])
def test_neighbouring_endpoints_need_the_token(sandbox, path, token):
    assert get(sandbox, path, token=token)[0] == 401


def test_whatsapp_status_while_connected_is_counted(sandbox):
    assert get(sandbox, "/api/whatsapp/status") == (200, CONNECTED)
    assert get(sandbox, "/api/whatsapp/status") == (200, CONNECTED)
    assert sandbox.state.status_requests == 2


def test_disconnect_after_n_starts_then_start_is_503_and_starts_nothing():
    state = SandboxState(token=TOKEN, disconnect_after=2)
    with SandboxServer(state) as sandbox:
        assert start(sandbox, {"phone": "5544999990001", "operators": ["OP-ANA"]})[0] == 200
        assert get(sandbox, "/api/whatsapp/status") == (200, CONNECTED)
        assert start(sandbox, {"phone": "5544999990002", "operators": ["OP-ANA"]})[0] == 200
        assert get(sandbox, "/api/whatsapp/status") == (200, DISCONNECTED)
        headers = {"Authorization": TOKEN, "Content-Type": "application/json"}
        request = urllib.request.Request(
            sandbox.base_url + "/start-attendance",
            data=json.dumps({"phone": "5544999990003", "operators": ["OP-ANA"]}).encode(),
            headers=headers,
        )
        with pytest.raises(urllib.error.HTTPError) as failed:
            urllib.request.urlopen(request, timeout=5)
        assert failed.value.code == 503
        assert json.loads(failed.value.read()) == {"error": "You are not connected."}
        assert "Retry-After" not in failed.value.headers
        assert start(sandbox, {"phone": "5544999990001", "operators": ["OP-ANA"]})[0] == 503
    assert state.total_starts() == 2 and "5544999990003" not in state.attendances
    assert state.answers["503"] == 2


def test_disconnected_answers_503_for_every_start():
    state = SandboxState(token=TOKEN, connected=False, faults={"554499999999": Fault("fail")})
    with SandboxServer(state) as sandbox:
        assert get(sandbox, "/api/whatsapp/status") == (200, DISCONNECTED)
        assert [start(sandbox, BODY)[0] for _ in range(3)] == [503, 503, 503]
    assert state.starts == {} and state.faults["554499999999"].times is None


@pytest.mark.parametrize(
    ("written", "exists"),
    [("5544999999999", True), ("554499999999", True)]
    + [(phone, False) for phone in sorted(NO_WHATSAPP)]
    + [(phone, False) for phone in ONLY_OTHER_FORM]
    + [(phone, True) for phone in ONLY_OTHER_FORM.values()],
)
def test_phone_exists(sandbox, written, exists):
    assert get(sandbox, f"/api/whatsapp/phone-exists/{written}") == (200, [{"exists": exists}])
    assert sandbox.state.phone_exists_requests == {written: 1}


def other_ninth_digit_form(phone):
    """The Brazilian mobile with the 9 after the area code added or removed."""
    area, number = phone[2:4], phone[4:]
    if len(number) == 9 and number[0] == "9":
        return "55" + area + number[1:]
    assert len(number) == 8 and number[0] in "6789", phone
    return "55" + area + "9" + number


def test_seeded_numbers_are_the_samples_and_the_other_form_is_right():
    import pandas as pd

    cells = pd.read_excel(SAMPLES / "leads.xlsx", dtype=str, engine="openpyxl")["Telefone"]
    sample = set(normalize_phones(cells)["phone"].dropna()) - {""}
    assert {"554430251234", "556232124455"} <= NO_WHATSAPP <= sample | {"5544999990666"}
    assert {"554499887766", "5521987654321"} <= set(ONLY_OTHER_FORM) & sample
    assert all(other_ninth_digit_form(w) == r for w, r in ONLY_OTHER_FORM.items())
    assert {len(w) for w in ONLY_OTHER_FORM} == {12, 13}  # both directions


@pytest.mark.parametrize("phone", ["+5544999999999", "55%2044999999999", "abc"])
def test_phone_exists_wants_digits(sandbox, phone):
    assert get(sandbox, f"/api/whatsapp/phone-exists/{phone}")[0] == 400


def test_operators_online_lists_the_active_operators(sandbox):
    before = int(time.time() * 1000) - 60_000
    status, body = get(sandbox, ONLINE_PATH)
    assert status == 200
    states = {op["id"]: op["state"] for op in body["data"]}
    assert states == {"OP-ANA": "online", "OP-BRUNO": "offline", "OP-CARLA": "online"}
    assert {op["name"] for op in body["data"]} == {"Ana Souza", "Bruno Lima", "Carla Nogueira"}
    assert all(set(op) == {"id", "lastChanged", "name", "state"} for op in body["data"])
    assert all(
        isinstance(op["lastChanged"], int) and op["lastChanged"] > before for op in body["data"]
    )
    sandbox.state.online = {"OP-BRUNO"}
    states = {op["id"]: op["state"] for op in get(sandbox, ONLINE_PATH)[1]["data"]}
    assert states == {"OP-ANA": "offline", "OP-BRUNO": "online", "OP-CARLA": "offline"}
    assert sandbox.state.online_requests == 2


@pytest.mark.parametrize(
    ("query", "error"),
    [("", "id is required"), ("?id=", "id is required"), ("?id=other", "account not found")],
)
def test_operators_online_wants_the_account_id(sandbox, query, error):
    path = "/api/account/get-operators-online" + query
    assert get(sandbox, path) == (400, {"error": error})


def test_state_lists_whatsapp_numbers_operators_and_counters(sandbox):
    get(sandbox, "/api/whatsapp/status")
    get(sandbox, "/api/whatsapp/phone-exists/554430251234")
    get(sandbox, ONLINE_PATH)
    state = get(sandbox, "/_sandbox/state", token=None)[1]
    assert state["whatsapp"] == CONNECTED
    assert state["no_whatsapp"] == sorted(NO_WHATSAPP)
    assert state["only_other_form"] == ONLY_OTHER_FORM
    assert state["online"] == ["OP-ANA", "OP-CARLA"]
    assert state["account_id"] == SANDBOX_ACCOUNT_ID
    assert state["status_requests"] == 1 and state["online_requests"] == 1
    assert state["phone_exists_requests"] == {"554430251234": 1}
    sandbox.state.connected = False
    assert get(sandbox, "/_sandbox/state", token=None)[1]["whatsapp"] == DISCONNECTED


@pytest.mark.parametrize(
    ("args", "connected", "disconnect_after"),
    [([], True, None), (["--disconnected"], False, None), (["--disconnect-after", "3"], True, 3)],
)
def test_sandbox_command_wires_the_whatsapp_options(
    runner, monkeypatch, args, connected, disconnect_after
):
    seen = []
    monkeypatch.setattr(sandbox_module, "serve", lambda state, *_: seen.append(state))
    result = runner.invoke(cli, ["sandbox", *args])
    assert result.exit_code == 0, result.output
    assert (seen[0].connected, seen[0].disconnect_after) == (connected, disconnect_after)


def test_standalone_sandbox_started_disconnected():
    with standalone_sandbox("--token", TOKEN, "--disconnected") as base_url:
        origin = base_url.removesuffix("/api/integrations")
        status, raw = call(origin + "/api/whatsapp/status", "GET", headers={"Authorization": TOKEN})
        assert (status, json.loads(raw)) == (200, DISCONNECTED)
        headers = {"Authorization": TOKEN, "Content-Type": "application/json"}
        assert call(base_url + "/start-attendance", body=BODY, headers=headers)[0] == 503


def finish(sandbox, body, token=TOKEN, method="POST", content_type="application/json"):
    headers = {"Authorization": token, **({"Content-Type": content_type} if content_type else {})}
    return call(sandbox.base_url + "/finish-attendance", method, body, headers)


def test_finish_attendance_ends_one_and_the_chat_can_be_started_again(sandbox):
    assert start(sandbox, BODY) == (200, b"true")
    ended = {"phone": BODY["phone"], "operatorId": "OP-BRUNO", "autoTransfer": True}
    assert [finish(sandbox, ended, token="wrong")[0], finish(sandbox, ended, method="PUT")[0],
            finish(sandbox, ended, content_type=None)[0]] == [401, 405, 415]  # fmt: skip
    for malformed in ({**ended, "operatorId": ""}, {**ended, "autoTransfer": "yes"}):
        assert finish(sandbox, malformed)[0] == 400
    status, raw = finish(sandbox, {**ended, "operatorId": "OP-NOBODY"})
    assert (status, json.loads(raw)) == (400, {"error": "not found: OP-NOBODY"})
    assert sandbox.state.attendances  # none of those ended it
    status, raw = finish(sandbox, ended)
    answer = {"success": True, "message": "Ticket closed successfully", "chatFounded": True}
    assert (status, json.loads(raw)) == (200, answer)
    assert json.loads(finish(sandbox, ended)[1])["chatFounded"] is False  # nothing left
    again = start(sandbox, {"phone": BODY["phone"], "operators": ["OP-CARLA"]})
    assert again == (200, b"true")  # a new attendance, not "already in service"
    state = json.loads(
        call(sandbox.base_url.replace("/api/integrations", "/_sandbox/state"), "GET")[1]
    )
    assert state["finished"] == {BODY["phone"]: 1} and state["starts"] == {BODY["phone"]: 2}
    assert state["attendances"][BODY["phone"]]["operators"] == ["OP-CARLA"]
