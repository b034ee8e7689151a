"""The sandbox answers as the vendor's page says, over real HTTP on 127.0.0.1."""

import json
import urllib.error
import urllib.request

import pytest

from batch_attend.sandbox import Fault, SandboxServer, SandboxState
from tests.conftest import TOKEN


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


def test_rate_limit_answers_429_with_retry_after():
    with SandboxServer(SandboxState(token=TOKEN, rate_limit=2)) as sandbox:
        statuses = [
            start(sandbox, {"phone": f"55449999999{i}", "operators": ["A"]})[0] for i in range(6)
        ]
    assert 429 in statuses and statuses[0] == 200


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
