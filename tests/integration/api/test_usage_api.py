"""Cost on versions and runs, the usage endpoint, and a spent budget over HTTP."""

from __future__ import annotations

from tests.integration.api.conftest import Api, MakeApi


def test_versions_and_runs_carry_their_cost_and_usage_adds_them_up(run_api: Api) -> None:
    created = run_api.create()
    cost = created["cost"]
    assert cost["model"] == "fake-model" and cost["prompt_version"]
    assert (cost["model_requests"], cost["input_tokens"], cost["output_tokens"]) == (1, 10, 20)
    assert cost["tokens"] == 30 and cost["cost_usd"] is None  # no price known for fake-model
    assert cost["check_cpu_seconds"] is not None and cost["check_cpu_seconds"] >= 0
    versions = run_api.call("GET", f"/api/task/{created['id']}/versions").json["versions"]
    assert versions[0]["cost"] == cost

    accepted = run_api.call(
        "POST", f"/api/task/{created['id']}/run", json={"input_text": "a\nb\n"}
    ).json
    done = run_api.wait_run(accepted["run_id"])
    assert done["status"] == "succeeded" and done["cpu_seconds"] > 0

    usage = run_api.call("GET", "/api/usage").json
    assert usage["total"]["tokens"] == 30 and usage["total"]["model_requests"] == 1
    assert usage["total"]["runs"] == 1 and usage["total"]["cost_usd"] is None
    expected_cpu = cost["check_cpu_seconds"] + done["cpu_seconds"]
    assert abs(usage["total"]["cpu_seconds"] - expected_cpu) < 1e-5
    assert [t["task_id"] for t in usage["by_task"]] == [created["id"]]
    assert [u["user"] for u in usage["by_user"]] == ["api"]
    assert usage["budgets"] == []
    assert run_api.call("GET", "/api/usage?days=0").error_code() == "invalid_input"


def test_a_spent_budget_answers_429_saying_which_and_until_when(
    make_api: MakeApi, sqlite_url: str
) -> None:
    api = make_api(sqlite_url, budget_user_daily_tokens=30)
    api.create()
    api.model.queue("{}")
    reply = api.call("POST", "/api/task/create", json={"desired_action": "count words"})
    assert reply.status == 429 and reply.error_code() == "budget_exceeded"
    message = reply.json["error"]["message"]
    assert "model tokens budget" in message and "resets at" in message and "UTC" in message
    assert len(api.model.prompts) == 1  # the model was not asked
    budgets = api.call("GET", "/api/usage").json["budgets"]
    assert budgets == [
        {"scope": "user", "unit": "tokens", "limit": 30.0, "spent": 30.0, "exceeded": True}
    ]


def test_over_the_queued_runs_limit_answers_429_busy_with_how_many_are_ahead(
    make_api: MakeApi, sqlite_url: str
) -> None:
    api = make_api(sqlite_url, fair_user_queued_runs=2)  # runs recorded, not executed
    task_id = api.create()["id"]
    for _ in range(2):
        run = api.call("POST", f"/api/task/{task_id}/run", json={"input_text": "a\n"})
        assert run.status == 202
    reply = api.call("POST", f"/api/task/{task_id}/run", json={"input_text": "a\n"})
    assert reply.status == 429 and reply.error_code() == "busy"
    assert "2 runs waiting (at most 2), 2 ahead of you" in reply.json["error"]["message"]
    assert len(api.services.runs.queued_ids()) == 2  # the refused one was not queued
