"""Poll cycles against the fake on the mock clock: locate, collect, decrypt, dedupe."""

from __future__ import annotations

from typing import Any

import pytest
import trio
from findhub_support import T0, World, fix_rows, refs
from trio.testing import MockClock

from gpshub_findhub.nova import EXECUTE_ACTION
from gpshub_findhub.source import LIST_ONLY, NO_COORDINATES, PIDS_KEY, POLL_BUDGET_S
from gpshub_findhub.testing import FakeFindHub
from hub.runner import POLL_TIMEOUT
from hub.source import Cursor, PollResult


def cursors_after(result: PollResult, before: dict[str, Cursor]) -> dict[str, Cursor]:
    """The cursors the runner would keep: the poll's, else the old ones."""
    return {**before, **result.cursors}


async def test_a_poll_locates_each_device_and_makes_fixes(
    world: World, gpshub_clock: MockClock
) -> None:
    fake = world.fake
    tag = fake.add_tracker("Keys")
    fake.report(tag, 52.52, 13.405, alt=34, accuracy=12, t=T0 - 30)
    source = world.source()
    devices = refs([tag])
    start = trio.current_time()
    result = await source.poll(devices, {})
    assert fix_rows(result, tag) == [(T0 - 30, 52.52, 13.405)]
    (fix,) = result.fixes[tag]
    assert fix.altitude_m == 34 and fix.accuracy_m == 12
    assert fix.sensors == {"report_status": "own", "is_own_report": True}
    assert len(fake.locates) == 1
    assert trio.current_time() - start < 5  # every answer came: no waiting out push_wait_s
    assert result.notices == []


async def poll(world: World, source, ids: list[str], cursors: dict[str, Cursor]):  # type: ignore[no-untyped-def]
    result = await source.poll(refs(ids), cursors)
    cursors.update(result.cursors)
    return result


async def test_cool_downs_dedupe_and_the_cadence(world: World, gpshub_clock: MockClock) -> None:
    """A device is asked at most every 300 s; the same report served again is no new fix;
    a crowdsourced answer pushes the next request 600 s out."""
    fake = world.fake
    tag, crowd = fake.add_tracker("Keys"), fake.add_tracker("Bag")
    fake.report(tag, 52.52, 13.405, t=T0 - 60)
    fake.report(crowd, 48.4, 9.9, alt=-3, accuracy=40, t=T0 - 50, status="crowdsourced")
    source = world.source()
    cursors: dict[str, Cursor] = {}
    first = await poll(world, source, [tag, crowd], cursors)
    assert fix_rows(first, tag) == [(T0 - 60, 52.52, 13.405)]
    assert fix_rows(first, crowd) == [(T0 - 50, 48.4, 9.9)]
    assert first.fixes[crowd][0].sensors == {
        "report_status": "crowdsourced",
        "is_own_report": False,
    }
    assert [c.canonic_id for c in fake.locates] == [tag, crowd]
    asked = {tag: [fake.locates[0].at], crowd: [fake.locates[1].at]}
    assert asked[crowd][0] - asked[tag][0] == pytest.approx(5, abs=0.5)  # staggered

    for _ in range(10):  # 10 polls at the active cadence: 1,200 s
        await trio.sleep(120)
        result = await poll(world, source, [tag, crowd], cursors)
        for call in fake.locates[sum(len(v) for v in asked.values()) :]:
            asked[call.canonic_id].append(call.at)
        assert result.fixes == {}  # the same reports again: nothing new
    for previous, later in zip(asked[tag], asked[tag][1:], strict=False):
        assert 300 <= later - previous <= 300 + 120 + 10
    for previous, later in zip(asked[crowd], asked[crowd][1:], strict=False):
        assert 600 <= later - previous <= 600 + 120 + 10
    assert len(asked[tag]) >= 3 and len(asked[crowd]) >= 2

    fake.report(tag, 52.53, 13.41, t=fake.now() - 5)  # it moved
    await trio.sleep(300)
    moved = await poll(world, source, [tag, crowd], cursors)
    assert [(lat, lon) for _, lat, lon in fix_rows(moved, tag)] == [(52.53, 13.41)]
    assert moved.active is True


async def test_the_same_push_again_and_a_restart_replay_nothing(
    world: World, gpshub_clock: MockClock
) -> None:
    fake = world.fake
    tag = fake.add_tracker("Keys")
    fake.report(tag, 52.52, 13.405, t=T0 - 60)
    cursors: dict[str, Cursor] = {}
    first = await poll(world, world.source(), [tag], cursors)
    assert len(first.fixes[tag]) == 1
    saved = world.state.data[PIDS_KEY]
    assert saved and fake.mcs.acked_ids == saved
    # the same update pushed again (unsolicited), then a restart: a new source, same state
    fake.push_update(tag)
    await trio.sleep(300)
    again = await poll(world, world.source(), [tag], cursors)
    assert again.fixes == {}
    logins = fake.mcs.logins
    assert set(saved) <= set(logins[-1].received_persistent_ids)


async def test_unsolicited_updates_of_known_devices_are_taken(
    world: World, gpshub_clock: MockClock
) -> None:
    fake = world.fake
    tag, other = fake.add_tracker("Keys"), fake.add_tracker("Not imported")
    fake.report(tag, 52.52, 13.405, t=T0 - 600)
    fake.report(other, 1.0, 1.0, t=T0 - 600)
    fake.push_update(other)  # a device the hub does not have: ignored
    fake.report(tag, 52.6, 13.5, t=T0 - 100)
    fake.push_update(tag)  # e.g. a late answer to an earlier request
    fake.answer_locates = False
    result = await world.source(push_wait_s=10).poll(refs([tag]), {})
    assert sorted(fix_rows(result, tag)) == [(T0 - 600, 52.52, 13.405), (T0 - 100, 52.6, 13.5)]
    assert set(result.fixes) == {tag}


async def test_a_device_whose_key_does_not_open_gets_a_notice_the_others_go_on(
    world: World, gpshub_clock: MockClock
) -> None:
    fake = world.fake
    good, stale = fake.add_tracker("Keys"), fake.add_tracker("Old tag")
    fake.devices[stale].encrypted_eik = bytes(60)  # sealed under another owner key
    for cid in (good, stale):
        fake.report(cid, 52.52, 13.405, t=T0 - 60)
    result = await world.source().poll(refs([good, stale]), {})
    assert set(result.fixes) == {good}
    (notice,) = result.notices
    assert "'device 2'" in notice and "secrets.json" in notice


async def test_without_owner_key_no_coordinates_said_plainly(
    world: World, gpshub_clock: MockClock
) -> None:
    tag = world.fake.add_tracker("Keys")
    world.fake.report(tag, 52.52, 13.405, t=T0 - 60)
    result = await world.source(secrets={"owner_key": None}).poll(refs([tag]), {})
    assert result.fixes == {} and NO_COORDINATES in result.notices
    assert len(world.fake.locates) == 1  # still asked: the list and the push work


async def test_without_fcm_credentials_the_account_is_list_only(
    world: World, gpshub_clock: MockClock
) -> None:
    fake = world.fake
    fake.embed_reports = True  # the rare case: the list carries a report
    tag = fake.add_tracker("Keys")
    fake.report(tag, 52.52, 13.405, t=T0 - 60)
    result = await world.source(secrets={"fcm": False}).poll(refs([tag]), {})
    assert LIST_ONLY in result.notices
    assert fake.locates == [] and fake.mcs.logins == []
    assert fix_rows(result, tag) == [(T0 - 60, 52.52, 13.405)]
    assert fake.auth_forms[0]["androidId"].isdigit()  # a random one, kept
    assert world.state.data["findhub.android_id"] == fake.auth_forms[0]["androidId"]


def reporting_tags(fake: FakeFindHub, n: int) -> list[str]:
    """``n`` trackers with a report each, a minute before the test's start."""
    tags = [fake.add_tracker(f"Tag {i}") for i in range(n)]
    for cid in tags:
        fake.report(cid, 52.52, 13.405, t=T0 - 60)
    return tags


async def test_a_429_stops_the_sending_and_pauses_per_retry_after(
    world: World, gpshub_clock: MockClock
) -> None:
    fake = world.fake
    tags = reporting_tags(fake, 4)
    fake.rate_limit(retry_after=400, path=EXECUTE_ACTION)
    fake.requests.clear()
    source = world.source()
    cursors: dict[str, Cursor] = {}
    first = await poll(world, source, tags, cursors)
    assert fake.requests[EXECUTE_ACTION] == 1 and fake.locates == []
    assert any("rate limiting" in n and "400 s" in n for n in first.notices)
    await trio.sleep(120)
    second = await poll(world, source, tags, cursors)
    assert fake.requests[EXECUTE_ACTION] == 1
    assert any("paused" in n for n in second.notices)
    await trio.sleep(300)
    await poll(world, source, tags, cursors)
    assert len(fake.locates) == 4


async def test_a_large_account_is_asked_in_turn_within_the_poll_budget(
    world: World, gpshub_clock: MockClock
) -> None:
    fake = world.fake
    tags = reporting_tags(fake, 20)
    fake.answer_delay_s = 3
    source = world.source()
    cursors: dict[str, Cursor] = {}
    durations = []
    for _ in range(3):
        start = trio.current_time()
        await poll(world, source, tags, cursors)
        durations.append(trio.current_time() - start)
        await trio.sleep(120 - durations[-1])
    assert max(durations) <= POLL_BUDGET_S < POLL_TIMEOUT
    per_poll = 1 + (POLL_BUDGET_S - 60) // 5
    assert len(fake.locates) <= 3 * per_poll
    assert len({c.canonic_id for c in fake.locates}) == len(fake.locates)  # nobody twice
    assert len(fake.locates) >= 2 * per_poll


async def test_unanswered_requests_end_the_poll_after_push_wait(
    world: World, gpshub_clock: MockClock
) -> None:
    tag = world.fake.add_tracker("Keys")
    world.fake.answer_locates = False
    start = trio.current_time()
    result = await world.source().poll(refs([tag]), {})
    assert trio.current_time() - start == pytest.approx(60, abs=1)
    assert result.fixes == {}


async def test_a_refused_push_login_is_a_notice_and_the_list_still_counts(
    world: World, gpshub_clock: MockClock
) -> None:
    fake = world.fake
    fake.embed_reports = True
    tag = fake.add_tracker("Keys")
    fake.report(tag, 52.52, 13.405, t=T0 - 60)
    fake.mcs.login_error = (401, "authentication failed")
    result = await world.source().poll(refs([tag]), {})
    assert any("push login" in n and "new secrets.json" in n for n in result.notices)
    assert fake.locates == []
    assert len(result.fixes[tag]) == 1


async def test_a_phone_is_decrypted_with_the_keys_its_answer_carries(
    world: World, gpshub_clock: MockClock
) -> None:
    fake = world.fake
    phone = fake.add_phone("Pixel")
    fake.report(phone, 47.0, 8.0, accuracy=5, t=T0 - 10, place_name="")
    result = await world.source().poll(refs([phone]), {})
    assert fix_rows(result, phone) == [(T0 - 10, 47.0, 8.0)]


async def test_a_semantic_place_name_is_a_sensor(world: World, gpshub_clock: MockClock) -> None:
    fake = world.fake
    tag = fake.add_tracker("Keys")
    fake.report(tag, 52.52, 13.405, t=T0 - 60)
    fake.report(tag, 0, 0, t=T0 - 58, status="semantic", place_name="Home")
    result = await world.source().poll(refs([tag]), {})
    (fix,) = result.fixes[tag]
    assert fix.sensors["place_name"] == "Home"


async def test_a_mcu_tracker_with_a_bit_inverted_key(world: World, gpshub_clock: MockClock) -> None:
    fake = world.fake
    tag = fake.add_tracker("DIY", mcu=True, form="cbc")
    fake.report(tag, 48.4, 9.9, t=T0 - 60, status="crowdsourced")
    result = await world.source().poll(refs([tag]), {})
    assert fix_rows(result, tag) == [(T0 - 60, 48.4, 9.9)]


async def test_test_connection_and_browse(world: World, gpshub_clock: MockClock) -> None:
    fake = world.fake
    for name in ("Keys", "Bag", "Bike"):
        fake.add_tracker(name, manufacturer="Chipolo", model="ONE")
    fake.add_phone("Pixel")
    summary = await world.source().test_connection()
    assert summary == (
        "Find Hub account a…@gmail.com: 4 devices (3 trackers, 1 phone);"
        " fresh locations: yes; decryption: yes"
    )
    devices = {d.name: d for d in await world.source().list_devices()}
    assert devices["Keys"].extra == {"type": "keys", "manufacturer": "Chipolo", "model": "ONE"}
    assert devices["Pixel"].extra["type"] == "phone"
    assert devices["Keys"].upstream_id in fake.devices


async def test_test_connection_says_what_is_missing(world: World, gpshub_clock: MockClock) -> None:
    world.fake.add_tracker("Keys")
    summary = await world.source(secrets={"fcm": False, "owner_key": None}).test_connection()
    assert "1 device (1 tracker, 0 phones)" in summary
    assert "fresh locations: no — secrets.json has no fcm_credentials" in summary
    assert "decryption: no — secrets.json has no owner_key (no coordinates)" in summary
    world.fake.devices[next(iter(world.fake.devices))].encrypted_eik = bytes(
        60
    )  # GCM: a wrong key is detected
    stale = await world.source().test_connection()
    assert "does not open the keys of 'Keys'" in stale


async def test_an_outdated_owner_key_shows_at_every_poll_even_without_reports(
    world: World, gpshub_clock: MockClock
) -> None:
    stale = world.fake.add_tracker("Old tag")
    world.fake.devices[stale].encrypted_eik = bytes(60)
    result = await world.source(secrets={"fcm": False}).poll(refs([stale]), {})
    assert any(n.startswith("'device 1': ") and "secrets.json" in n for n in result.notices)


async def test_the_push_connection_over_tls_with_a_test_ca(
    gpshub_wall: Any,
    gpshub_http: Any,
    gpshub_serve: Any,
    gpshub_clock: MockClock,
    monkeypatch: Any,
) -> None:
    from gpshub_findhub import auth

    fake = FakeFindHub(now=lambda: gpshub_wall.now().timestamp(), mcs_tls=True)
    monkeypatch.setattr(auth, "post_auth_form", fake.post_form)
    url = await gpshub_serve(fake)
    tag = fake.add_tracker("Keys")
    fake.report(tag, 52.52, 13.405, t=T0 - 60)
    world = World(fake, url, gpshub_http, gpshub_wall)
    options = fake.options(url)
    assert options["mcs_tls"] is True and options["mcs_ca_file"]
    result = await world.source().poll(refs([tag]), {})
    assert fix_rows(result, tag) == [(T0 - 60, 52.52, 13.405)]
