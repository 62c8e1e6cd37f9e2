"""Personal tokens, their audit and who may see what, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from freezegun import freeze_time
from sqlalchemy import select, update

from bot.composition import Services, build_services
from bot.config import Settings
from bot.services.errors import InvalidInput, NotAllowed, NotFound, Unauthorized
from bot.services.principal import Principal, PrincipalKind, Scope
from bot.services.tokens import TokenRefused
from bot.services.views import Workspace
from bot.slack.members import slack_members
from storage import migrate
from storage.db import make_engine
from storage.models import ApiToken, Task
from tests.fakes.model import FakeCodeGenerator
from tests.fakes.openai_server import COUNT_LINES, answer_json
from tests.fakes.slack_api import MockSlackAPI


class Members:
    """Who is in which channel, and how often it was asked."""

    def __init__(self, channels: dict[str, set[str]]) -> None:
        self.channels = channels
        self.asked = 0

    def members(
        self, *, team_id: str, enterprise_id: str | None, channel_id: str
    ) -> frozenset[str] | None:
        self.asked += 1
        return frozenset(self.channels.get(channel_id, set()))


@pytest.fixture
def members() -> Members:
    return Members({"C1": {"U1", "U3"}})


def _services(db_url: str, members: Members, **extra: object) -> Services:
    settings = Settings(database_url=db_url, admin_users=("UADMIN",), **extra)  # type: ignore[arg-type]
    engine = make_engine(db_url)
    migrate.upgrade(engine)
    return build_services(settings, engine=engine, generator=FakeCodeGenerator(), members=members)


@pytest.fixture
def services(db_url: str, members: Members) -> Iterator[Services]:
    built = _services(db_url, members, members_cache_seconds=60, api_token="op-secret")
    yield built
    built.close()


def _task(services: Services, *, channel: str | None, creator: str = "U1", team: str = "T1") -> str:
    model = services.generator
    assert isinstance(model, FakeCodeGenerator)
    model.queue(answer_json(code=COUNT_LINES))
    detail = services.tasks.create(
        description="count lines",
        requested_by=creator,
        source="slack",
        workspace=Workspace(team),
        channel_id=channel,
    )
    return detail.task.id


def test_only_the_hash_is_stored_and_the_token_acts_as_its_owner(services: Services) -> None:
    issued = services.tokens.issue(
        team_id="T1", enterprise_id="E1", user_id="U1", name="ci", scopes={Scope.READ}
    )
    assert issued.secret.startswith("tbp_") and len(issued.secret) == 47
    with services.uow() as uow:
        rows = list(uow.session.scalars(select(ApiToken)))
    assert len(rows) == 1 and issued.secret not in repr(vars(rows[0]))
    who = services.tokens.authenticate(issued.secret)
    assert (who.kind, who.team_id, who.enterprise_id, who.user_id) == (
        PrincipalKind.PERSON,
        "T1",
        "E1",
        "U1",
    )
    assert who.scopes == {Scope.READ} and not who.admin
    operator = services.tokens.authenticate("op-secret")
    assert operator.is_operator and operator.team_id == ""
    # The secret with its last character changed (to another one: it may already be "A").
    altered = issued.secret[:-1] + ("B" if issued.secret.endswith("A") else "A")
    for bad in ("", "op-secre", altered, "tbp_" + "A" * 43):
        with pytest.raises(Unauthorized):
            services.tokens.authenticate(bad)


def test_a_token_expires_at_its_time_and_revocation_is_at_once(services: Services) -> None:
    with freeze_time("2026-12-01 12:00:00"):
        issued = services.tokens.issue(team_id="T1", enterprise_id=None, user_id="U1", days=2)
        assert services.tokens.issue(team_id="T1", enterprise_id=None, user_id="U1").token.name
    with freeze_time("2026-12-03 11:59:59"):
        assert services.tokens.authenticate(issued.secret).user_id == "U1"
    with freeze_time("2026-12-03 12:00:00"), pytest.raises(TokenRefused) as expired:
        services.tokens.authenticate(issued.secret)
    assert expired.value.reason == "expired" and expired.value.principal.user_id == "U1"
    other = services.tokens.issue(team_id="T1", enterprise_id=None, user_id="U2", name="x")
    with pytest.raises(NotFound):
        services.tokens.revoke("x", team_id="T1", user_id="U1")  # not theirs
    services.tokens.revoke("x", team_id="T1", user_id="U2")
    with pytest.raises(TokenRefused) as revoked:
        services.tokens.authenticate(other.secret)
    assert revoked.value.reason == "revoked"


def test_names_days_and_scopes_are_checked(services: Services) -> None:
    issue = services.tokens.issue
    issue(team_id="T1", enterprise_id=None, user_id="U1", name="ci")
    for kwargs in ({"name": "ci"}, {"name": "<!channel>"}, {"days": 0}, {"days": 367}):
        with pytest.raises(InvalidInput):
            issue(team_id="T1", enterprise_id=None, user_id="U1", **kwargs)  # type: ignore[arg-type]
    issue(team_id="T2", enterprise_id=None, user_id="U1", name="ci")  # another workspace
    with pytest.raises(NotAllowed):
        services.tokens.list(team_id="T1", user_id="U1", everyone=True)
    everyone = services.tokens.list(team_id="T1", user_id="UADMIN", everyone=True)
    assert [(t.team_id, t.name) for t in everyone] == [("T1", "ci")]


def test_a_person_sees_their_channels_tasks_and_their_own_and_nothing_else(
    services: Services, members: Members
) -> None:
    in_c1 = _task(services, channel="C1", creator="U9")
    in_c2 = _task(services, channel="C2", creator="U9")
    own_c2 = _task(services, channel="C2", creator="U1")
    elsewhere = _task(services, channel="C1", creator="U1", team="T2")

    def person(user: str) -> Principal:
        secret = services.tokens.issue(team_id="T1", enterprise_id=None, user_id=user).secret
        return services.tokens.authenticate(secret)

    u1, u2 = person("U1"), person("U2")
    seen = {s.task.id for s in services.personal.list(u1, limit=20)}
    assert seen == {in_c1, own_c2}
    assert services.personal.list(u2, limit=20) == []
    for hidden in (in_c2, elsewhere):
        with pytest.raises(NotFound) as err:
            services.personal.task(u1, hidden)
        assert str(err.value) == f"No task with id {hidden!r}."
    assert members.asked <= 3  # C1 and C2 asked once each, then cached


def _with_id(services: Services, task_id: str, *, channel: str, creator: str) -> str:
    started = services.tasks.start(
        description="count lines",
        requested_by=creator,
        source="slack",
        workspace=Workspace("T1"),
        channel_id=channel,
    )
    with services.uow() as uow:
        uow.session.execute(update(Task).where(Task.id == started.id).values(id=task_id))
        uow.commit()
    return task_id


def test_a_prefix_shared_with_an_unseen_task_neither_fails_nor_reveals(services: Services) -> None:
    _with_id(services, "abcdef01-0000-4000-8000-000000000000", channel="C2", creator="U9")
    mine = _with_id(services, "abcdef02-0000-4000-8000-000000000000", channel="C2", creator="U1")
    u1 = services.tokens.authenticate(
        services.tokens.issue(team_id="T1", enterprise_id=None, user_id="U1").secret
    )
    u2 = services.tokens.authenticate(
        services.tokens.issue(team_id="T1", enterprise_id=None, user_id="U2").secret
    )
    assert services.personal.task(u1, "abcdef").id == mine  # the unseen twin is not "ambiguous"
    with pytest.raises(NotFound) as err:
        services.personal.task(u2, "abcdef")
    assert str(err.value) == "No task with id 'abcdef'."
    with pytest.raises(InvalidInput):
        services.personal.task(u1, "abc")  # under 6 characters: refused as in Slack


def test_allowed_lists_apply_to_tokens(db_url: str, members: Members) -> None:
    services = _services(db_url, members, allowed_users=("U1",), allowed_channels=("C9",))
    try:
        in_c1 = _task(services, channel="C1", creator="U1")
        secret = services.tokens.issue(team_id="T1", enterprise_id=None, user_id="U3").secret
        with pytest.raises(NotAllowed):
            services.personal.list(services.tokens.authenticate(secret), limit=5)
        mine = services.tokens.issue(team_id="T1", enterprise_id=None, user_id="U1").secret
        with pytest.raises(NotFound):  # C1 is not an allowed channel
            services.personal.task(services.tokens.authenticate(mine), in_c1)
    finally:
        services.close()


def test_the_audit_pages_newest_first_and_old_entries_are_deleted(services: Services) -> None:
    secret = services.tokens.issue(team_id="T1", enterprise_id=None, user_id="U1").secret
    who = services.tokens.authenticate(secret)
    admin = services.tokens.authenticate(
        services.tokens.issue(team_id="T1", enterprise_id=None, user_id="UADMIN").secret
    )
    with freeze_time("2026-09-01"):
        services.audit.record(who, action="GET /api/tasks", status=200, outcome="ok")
    with freeze_time("2026-12-01"):
        for n in range(5):
            services.audit.record(who, action=f"GET /api/run/{n}", status=404, outcome="not_found")
    first = services.audit.page(admin, limit=3)
    assert [e.action for e in first.entries] == [f"GET /api/run/{n}" for n in (4, 3, 2)]
    rest = services.audit.page(admin, before=first.next_before, limit=10)
    assert [e.action for e in rest.entries][-1] == "GET /api/tasks" and rest.next_before is None
    with pytest.raises(NotAllowed):
        services.audit.page(who)
    with freeze_time("2026-12-02"):
        assert services.audit.purge() == 1  # 90 days by default: September's entry goes
    assert len(services.audit.page(admin, limit=100).entries) == 5


def test_slack_members_reads_every_page_and_a_gone_channel_has_nobody() -> None:
    mock = MockSlackAPI().start()
    try:
        mock.channel_members["C1"] = [f"U{n}" for n in range(450)]
        members = slack_members(bot_token="xoxb-test", api_url=mock.api_url, installations=None)
        found = members.members(team_id="T1", enterprise_id=None, channel_id="C1")
        assert found is not None and len(found) == 450 and "U449" in found
        assert len(mock.of("conversations.members")) == 3  # 200 a page
        assert members.members(team_id="T1", enterprise_id=None, channel_id="CX") == frozenset()
    finally:
        mock.stop()
