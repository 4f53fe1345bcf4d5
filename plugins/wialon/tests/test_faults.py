"""Sessions and upstream faults against the fake: each fault switch and how it is mapped."""

from __future__ import annotations

import logging

import pytest
import trio
from trio.testing import MockClock
from wialon_support import T0, MakeSource, refs

from gpshub_wialon import protocol as p
from gpshub_wialon.batchsize import STATE_KEY as BATCH_KEY
from gpshub_wialon.client import SESSION_KEY
from hub.errors import CannotConnect, InvalidAuth, RateLimited, UpdateFailed
from hub.source import MemoryStateStore
from hub.testing import Poller, Served


async def steady(served: Served, make_source: MakeSource, **options: object) -> Poller:
    """A poller on one unit, past its first (login and sync) poll."""
    unit = served.fake.add_unit("Truck")
    served.fake.add_fix(unit, T0 - 10, 1.0, 1.0)
    poller = Poller(make_source(**options), refs(unit))
    await poller.poll()
    return poller


async def test_an_expired_session_is_renewed_once_mid_cycle(
    served: Served, make_source: MakeSource, gpshub_clock: MockClock
) -> None:
    fake = served.fake
    units = [fake.add_unit(f"u{i}") for i in range(4)]
    poller = Poller(make_source(batch_size=2), refs(*units))
    await poller.poll()
    for unit in units:
        fake.add_fix(unit, T0 + 5, 1.0, 1.0)
    await trio.sleep(30)
    fake.platform_error(path=p.BATCH, code=p.ERR_INVALID_SESSION)  # e.g. killed between two batches
    fake.expire_sessions()
    before = fake.requests.copy()
    await poller.poll()
    assert fake.requests - before == {p.LOGIN: 1, p.BATCH: 3}
    assert all(poller.times(u) == [T0 + 5] for u in units)


async def test_a_session_idle_for_five_minutes_is_gone(
    served: Served, make_source: MakeSource, gpshub_clock: MockClock
) -> None:
    poller = await steady(served, make_source)
    await trio.sleep(301)  # the fake drops it; the next request gets error 1
    await poller.poll()
    assert served.fake.requests[p.LOGIN] == 2


async def test_an_ip_change_logs_in_again(
    served: Served, make_source: MakeSource, gpshub_clock: MockClock
) -> None:
    poller = await steady(served, make_source)
    served.fake.ip_changed()
    served.fake.add_fix(poller.devices[0].upstream_id, T0 + 1, 1.0, 1.0)
    await trio.sleep(30)
    await poller.poll()
    assert served.fake.requests[p.LOGIN] == 2
    assert len(poller.fixes[poller.devices[0].upstream_id]) == 2


async def test_a_second_session_failure_is_update_failed_not_a_login_loop(
    served: Served, make_source: MakeSource, gpshub_clock: MockClock
) -> None:
    poller = await steady(served, make_source)
    served.fake.platform_error(times=5, path=p.BATCH, code=p.ERR_INVALID_SESSION)
    with pytest.raises(UpdateFailed, match="fresh session"):
        await poller.poll()
    assert served.fake.requests[p.LOGIN] == 2  # one re-login, not more


async def test_a_saved_session_is_reused_by_a_new_instance(
    served: Served, make_source: MakeSource, gpshub_clock: MockClock
) -> None:
    fake = served.fake
    state = MemoryStateStore()
    unit = fake.add_unit("Truck")
    await Poller(make_source(state=state), refs(unit)).poll()
    assert fake.requests[p.LOGIN] == 1
    assert state.data[SESSION_KEY]["eid"] in fake.sessions
    assert fake.token not in repr(state.data)  # the token itself is not kept there
    await trio.sleep(120)
    await Poller(make_source(state=state), refs(unit)).poll()  # a restart
    assert fake.requests[p.LOGIN] == 1
    await trio.sleep(400)  # the session idled out: log in right away, no failing request
    before = fake.requests.copy()
    await Poller(make_source(state=state), refs(unit)).poll()
    assert (fake.requests - before)[p.LOGIN] == 1
    assert fake.executed[p.BATCH] == fake.requests[p.BATCH] == 3


async def test_a_saved_session_of_another_token_is_not_used(
    served: Served, make_source: MakeSource, gpshub_clock: MockClock
) -> None:
    fake = served.fake
    state = MemoryStateStore()
    unit = fake.add_unit("Truck")
    await Poller(make_source(state=state), refs(unit)).poll()
    other = {"token": fake.new_token(), "server_url": served.url}
    await Poller(make_source(state=state, credentials=other), refs(unit)).poll()
    assert fake.requests[p.LOGIN] == 2


async def test_rate_limit_is_rate_limited_without_retry_after(
    served: Served, make_source: MakeSource, gpshub_clock: MockClock
) -> None:
    poller = await steady(served, make_source)
    served.fake.platform_error(code=p.ERR_ONE_REQUEST, reason="LIMIT api_concurrent")
    with pytest.raises(RateLimited) as info:
        await poller.poll()
    assert info.value.retry_after is None
    assert "LIMIT api_concurrent" in str(info.value)
    await poller.poll()  # it passes


async def test_http_429_from_a_proxy_keeps_its_retry_after(
    served: Served, make_source: MakeSource, gpshub_clock: MockClock
) -> None:
    poller = await steady(served, make_source)
    served.fake.fail(429)
    with pytest.raises(RateLimited):
        await poller.poll()


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_5xx_is_cannot_connect(
    served: Served, make_source: MakeSource, gpshub_clock: MockClock, status: int
) -> None:
    poller = await steady(served, make_source)
    served.fake.fail(status)
    with pytest.raises(CannotConnect, match=str(status)):
        await poller.poll()


async def test_malformed_json_is_update_failed(
    served: Served, make_source: MakeSource, gpshub_clock: MockClock
) -> None:
    poller = await steady(served, make_source)
    served.fake.malformed()
    with pytest.raises(UpdateFailed, match="not JSON"):
        await poller.poll()


@pytest.mark.parametrize(
    ("code", "error"),
    [
        (5, UpdateFailed),
        (6, UpdateFailed),
        (3, UpdateFailed),
        (9, CannotConnect),
        (10, RateLimited),
    ],
)
async def test_error_answers_are_mapped(
    served: Served, make_source: MakeSource, gpshub_clock: MockClock, code: int, error: type
) -> None:
    poller = await steady(served, make_source)
    served.fake.platform_error(code=code)
    with pytest.raises(error, match=f"error {code}"):
        await poller.poll()


async def test_a_slow_answer_times_out_as_cannot_connect(
    served: Served, make_source: MakeSource, gpshub_clock: MockClock
) -> None:
    poller = await steady(served, make_source)
    served.fake.delay = 60  # longer than the client's 15 s timeout
    with pytest.raises(CannotConnect, match="did not answer in time"):
        await poller.poll()
    served.fake.delay = 0
    await poller.poll()


async def test_a_wrong_token_is_invalid_auth_after_one_login(
    served: Served, make_source: MakeSource, gpshub_clock: MockClock
) -> None:
    fake = served.fake
    unit = fake.add_unit("Truck")
    fake.revoke_token()
    source = make_source()
    with pytest.raises(InvalidAuth) as info:
        await source.poll(refs(unit), {})
    assert fake.token not in str(info.value)
    assert fake.requests == {p.LOGIN: 1}


async def test_a_token_revoked_mid_run_stops_at_the_re_login(
    served: Served, make_source: MakeSource, gpshub_clock: MockClock
) -> None:
    poller = await steady(served, make_source)
    served.fake.revoke_token()
    served.fake.expire_sessions()
    with pytest.raises(InvalidAuth):
        await poller.poll()
    assert served.fake.requests[p.LOGIN] == 2


async def test_fake_blocks_logins_after_ten_failures_a_minute(
    served: Served, make_source: MakeSource, gpshub_clock: MockClock
) -> None:
    """What the plugin must never cause: the fake behaves like Wialon's IP block."""
    bad = {"token": "0" * 72, "server_url": served.url}
    for _ in range(10):
        with pytest.raises(InvalidAuth):
            await make_source(credentials=bad).test_connection()
    with pytest.raises(InvalidAuth):  # the good token too, while blocked
        await make_source().test_connection()
    await trio.sleep(61)
    assert "fleet" in await make_source().test_connection()


async def test_error_6_halves_the_batch_and_the_size_that_works_is_kept(
    served: Served,
    make_source: MakeSource,
    gpshub_clock: MockClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A server that refuses batches of more than 30 requests with error 6: the poll goes
    on with halved batches, says so once, and later polls and restarts use what worked."""
    fake = served.fake
    fake.max_batch = 30  # requests per core/batch: 29 units and the unload
    units = [fake.add_unit(f"u{i:03d}") for i in range(100)]
    for unit in units:
        fake.add_fix(unit, T0 - 10, 1.0, 1.0)
    state = MemoryStateStore()
    poller = Poller(make_source(state=state, batch_size=100), refs(*units))
    with caplog.at_level(logging.WARNING, logger="gpshub.test.wialon"):
        result = await poller.poll()
    assert all(poller.times(u) == [T0 - 10] for u in units)
    # the connection's status says so while the size is reduced
    reduced = "batch size reduced to 25 (batch_size 100) after Wialon error 6 (batch too large)"
    assert result.notices == [reduced]
    assert fake.requests[p.BATCH] == 2 + 4  # 100 and 50 refused, then four batches of 25
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "batch size reduced to 25 after Wialon error 6 (batch too large)" in warnings[0]
    assert state.data[BATCH_KEY] == {"size": 25, "configured": 100}

    await trio.sleep(30)
    for unit in units:
        fake.add_fix(unit, T0 + 20, 1.0, 1.0)
    before = fake.requests.copy()
    assert (await poller.poll()).notices == [reduced]
    assert fake.requests - before == {p.BATCH: 4}  # no refusal any more
    assert all(poller.times(u) == [T0 - 10, T0 + 20] for u in units)

    await trio.sleep(30)  # a restart keeps the size that works
    before = fake.requests.copy()
    await Poller(make_source(state=state, batch_size=100), refs(*units)).poll()
    assert fake.requests - before == {p.SEARCH_ITEMS: 1, p.BATCH: 4}
    await trio.sleep(30)  # a new batch_size option starts from that
    before = fake.requests.copy()
    await Poller(make_source(state=state, batch_size=20), refs(*units)).poll()
    assert fake.requests - before == {p.SEARCH_ITEMS: 1, p.BATCH: 5}
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1


async def test_error_6_to_a_batch_of_one_unit_is_a_clear_error(
    served: Served, make_source: MakeSource, gpshub_clock: MockClock
) -> None:
    fake = served.fake
    units = [fake.add_unit(f"u{i}") for i in range(3)]
    fake.max_batch = 1  # not even one unit and the unload
    poller = Poller(make_source(batch_size=3), refs(*units))
    with pytest.raises(UpdateFailed, match=r"error 6 \(batch too large\) even to a core/batch"):
        await poller.poll()
    assert fake.requests[p.BATCH] == 2  # 3 units refused, then 1 unit refused too


async def test_re_logins_are_logged_at_info_naming_the_connection_and_no_secret(
    served: Served,
    make_source: MakeSource,
    gpshub_clock: MockClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Each new token/login after error 1, error 1011 or a saved session that idled out is
    one INFO record naming the connection; the token and session ids never appear."""
    fake = served.fake
    state = MemoryStateStore()
    unit = fake.add_unit("Truck")
    poller = Poller(make_source(state=state), refs(unit))
    sessions: set[str] = set()
    with caplog.at_level(logging.DEBUG, logger="gpshub.test.wialon"):
        await poller.poll()  # the first login is no re-login
        sessions.add(state.data[SESSION_KEY]["eid"])
        fake.expire_sessions()  # error 1
        await trio.sleep(30)
        await poller.poll()
        sessions.add(state.data[SESSION_KEY]["eid"])
        fake.ip_changed()  # error 1011
        await trio.sleep(30)
        await poller.poll()
        sessions.add(state.data[SESSION_KEY]["eid"])
        await trio.sleep(400)  # a restart after the saved session idled out
        await Poller(make_source(state=state), refs(unit)).poll()
        sessions.add(state.data[SESSION_KEY]["eid"])
    assert fake.requests[p.LOGIN] == 4 and len(sessions) == 4
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert len(infos) == 3, infos
    assert "error 1 (invalid session)" in infos[0]
    assert "error 1011" in infos[1]
    assert "idle for 4" in infos[2] and "expired" in infos[2]
    for message in infos:
        assert message.startswith("Wialon connection 'Fleet' (#1): ")
        assert message.endswith("logging in again")
    text = caplog.text
    assert fake.token not in text and not any(eid in text for eid in sessions)
