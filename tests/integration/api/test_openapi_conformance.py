"""schemathesis against the served /api/openapi.json: no 5xx, every response matches its schema.

The server is real (uvicorn on loopback, SQLite, a model that always answers, the in-process
pool with the real sandbox) and the schema is loaded over HTTP from the running server, as an
outside client sees it. Each operation is fuzzed three ways: valid data with random ids, valid
data with the ids of a real task and run, and invalid data (which must be refused with a 4xx).

(schemathesis's own ``from_fixture``/``parametrize`` plugin does not run on this pytest, so the
operations are driven through ``APIOperation.as_strategy`` with Hypothesis directly.)
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, assume, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from bot.api.app import api_document
from bot.services.codegen import ChatMessage, ModelReply
from bot.services.principal import ALL_SCOPES
from tests.fakes.openai_server import COUNT_LINES, answer_json
from tests.integration.api.conftest import TOKEN, Api, MakeApi

AUTH = {"Authorization": f"Bearer {TOKEN}"}
MAX_EXAMPLES = int(os.environ.get("API_FUZZ_EXAMPLES", "20"))
OPERATIONS = sorted(
    f"{method.upper()} {path}"
    for path, methods in api_document(max_input_bytes=1)["paths"].items()
    for method in methods
)
# "personal": valid data sent with a personal token (all scopes, an admin's) instead of API_TOKEN
VARIANTS = ["positive", "real-ids", "negative", "personal"]


class AlwaysAnswers:
    """A model that answers every request with valid code, so creates and refines succeed."""

    model_name = "always-answers"

    def generate(self, messages: Sequence[ChatMessage], *, schema: Mapping[str, Any]) -> ModelReply:
        return ModelReply(answer_json(code=COUNT_LINES), self.model_name, 10, 20)

    def queue(self, *answers: object) -> None:
        """Nothing to queue: every request gets the same answer."""


def _real_ids(api: Api, path: str) -> dict[str, Any] | None:
    if "{id}" not in path:
        return None
    task = api.create(COUNT_LINES)
    if path.startswith("/api/run/"):
        reply = api.call("POST", f"/api/task/{task['id']}/run", json={"input_text": "a\nb\n"})
        assert reply.status == 202, reply.raw
        api.wait_run(reply.json["run_id"])
        return {"id": reply.json["run_id"]}
    return {"id": task["id"]}


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("label", OPERATIONS)
def test_operation_conforms_to_the_served_schema(
    make_api: MakeApi, sqlite_url: str, label: str, variant: str
) -> None:
    api = make_api(sqlite_url, runner="local", generator=AlwaysAnswers(), admin_users=("U1",))
    schema = schemathesis.openapi.from_url(f"{api.url}/api/openapi.json")
    operation = schema.find_operation_by_label(label)
    assert operation is not None, label
    path_parameters = _real_ids(api, operation.path) if variant == "real-ids" else None
    if variant == "real-ids" and path_parameters is None:
        pytest.skip("no id in this path")
    mode = GenerationMode.NEGATIVE if variant == "negative" else GenerationMode.POSITIVE
    needs_input = variant == "real-ids" and operation.path.endswith("/run")
    headers = AUTH
    if variant == "personal":
        issued = api.services.tokens.issue(
            team_id="", enterprise_id=None, user_id="U1", scopes=ALL_SCOPES
        )
        headers = {"Authorization": f"Bearer {issued.secret}"}
    strategy = operation.as_strategy(mode, path_parameters=path_parameters, headers=headers)

    @given(case=strategy)
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    def check(case: Any) -> None:
        # The one rule the schema cannot express: `version` in both query and body must agree.
        both = isinstance(case.body, dict) and "version" in case.body and "version" in case.query
        assume(mode is GenerationMode.NEGATIVE or not both)
        if needs_input:  # a passthrough task refuses a run without input (422), by design
            assume(isinstance(case.body, dict) and {"input_text", "file"} & set(case.body))
        # What a file holds is beyond the schema (binary of any kind): an upload the service
        # cannot read (an archive, an old .xls) gets a documented 422, so a refused
        # schema-valid upload is not a failure; every other check still applies.
        uploads = isinstance(case.body, dict) and "file" in case.body
        excluded = [positive_data_acceptance] if uploads else []
        statuses.add(case.call_and_validate(excluded_checks=excluded).status_code)

    statuses: set[int] = set()
    try:
        check()
    except Unsatisfiable:
        if mode is not GenerationMode.NEGATIVE:
            raise
        pytest.skip("nothing in this operation can be made invalid")
    assert statuses - {401}, f"every request was refused as unauthenticated: {statuses}"
    print(label, variant, sorted(statuses))
