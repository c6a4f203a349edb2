"""`apply` makes the server match the declarations, is idempotent, and corrects drift made by hand."""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import Client, ScheduleOverlapPolicy, ScheduleUpdate, ScheduleUpdateInput
from temporalio.testing import WorkflowEnvironment

from starters import schedules
from tests.schedules.conftest import declaration
from tests.support.waiting import eventually
from zerotouch.schedules import MEMO_KEY, ScheduleDeclaration, schedule_id


async def test_apply_is_idempotent_and_corrects_drift(dev_env: WorkflowEnvironment, scope: str,
                                                      made: list[str]) -> None:
    client = dev_env.client
    made += ["nightly", "hourly"]
    declared = [declaration("nightly", cron=["30 2 * * *"], interval=None, time_zone="Europe/Berlin",
                            overlap="BUFFER_ONE", catchup_window="5m"),
                declaration("hourly", interval="1h", offset="15m", jitter="30s")]

    first = await schedules.apply(client, declared, scope)
    assert [(c.kind, c.name) for c in first] == [("create", "nightly"), ("create", "hourly")]
    assert await schedules.plan(client, declared, scope) == []  # described back exactly as sent
    assert await schedules.apply(client, declared, scope) == []  # a second apply changes nothing

    # Drift, as the Web UI or `temporal schedule update` would make it.
    handle = client.get_schedule_handle(schedule_id("nightly", scope))

    def drift(current: ScheduleUpdateInput) -> ScheduleUpdate:
        schedule = current.description.schedule
        schedule.policy.overlap = ScheduleOverlapPolicy.ALLOW_ALL
        schedule.policy.catchup_window = timedelta(hours=3)
        return ScheduleUpdate(schedule=schedule)

    await handle.update(drift)
    diff = await schedules.plan(client, declared, scope)
    assert [(c.kind, c.name) for c in diff] == [("update", "nightly")]
    assert diff[0].fields == {"overlap": ("ALLOW_ALL", "BUFFER_ONE"), "catchup_window": (10800.0, 300.0)}
    assert "overlap: 'ALLOW_ALL' → 'BUFFER_ONE'" in schedules.render_changes(diff)
    assert [c.kind for c in await schedules.apply(client, declared, scope)] == ["update"]
    assert await schedules.plan(client, declared, scope) == []

    # A declaration removed from the file is deleted (once the list shows it as managed) ...
    made.remove("hourly")
    remaining = declared[:1]
    deletes = await eventually(lambda: _deletes(client, remaining, scope), what="hourly listed as managed")
    assert [(c.kind, c.name) for c in deletes] == [("delete", "hourly")]
    assert [c.kind for c in await schedules.apply(client, remaining, scope)] == ["delete"]
    assert await schedules.describe(client, schedule_id("hourly", scope)) is None
    # ... and a schedule zerotouch does not manage is never touched.
    description = await handle.describe()
    assert (await description.memo())[MEMO_KEY] == {"managed": True, "cluster": scope, "name": "nightly"}


async def _deletes(client: Client, declared: list[ScheduleDeclaration], scope: str) -> list[schedules.Change]:
    changes = await schedules.plan(client, declared, scope)
    return [c for c in changes if c.kind == "delete"]


async def test_schedules_made_by_hand_are_left_alone(dev_env: WorkflowEnvironment, scope: str,
                                                     made: list[str]) -> None:
    client = dev_env.client
    made.append("mine")
    # One schedule of this scope, one made by hand with a look-alike ID but no zerotouch memo.
    await schedules.apply(client, [declaration("mine")], scope)
    foreign = schedule_id("foreign", scope)
    built = schedules.build_schedule(declaration("foreign"), scope)
    await client.create_schedule(foreign, built)
    try:
        listed = await eventually(lambda: _listed(client, foreign), what="foreign schedule listed")
        assert listed
        assert foreign not in await schedules.managed_ids(client, scope)
        # Its "mine" is deleted once listed; "foreign" stays.
        await eventually(lambda: _listed(client, schedule_id("mine", scope)), what="mine listed")
        assert [(c.kind, c.name) for c in await schedules.apply(client, [], scope)] == [("delete", "mine")]
        assert await schedules.describe(client, foreign) is not None
    finally:
        await client.get_schedule_handle(foreign).delete()


async def _listed(client: Client, sid: str) -> bool:
    ids = [entry.id async for entry in await client.list_schedules()]
    return sid in ids
