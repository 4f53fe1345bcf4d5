"""Source runners under trio's MockClock: cadence, backoff, error taxonomy, cursors."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest
import trio
from pydantic import BaseModel, SecretStr
from trio.testing import MockClock

from hub.blocking import blocking_calls_inline
from hub.clock import TrioClock
from hub.errors import BadConfig, CannotConnect, InvalidAuth, RateLimited
from hub.fix import PositionFix
from hub.models import ConnectionState
from hub.runner import MAX_BACKOFF, backoff_delay
from hub.source import Cadence, Cursor, DeviceRef, PollResult, RemoteDevice, UpstreamUrl
from hub.testing import EPOCH, LOOPBACK_NETWORKS, ScriptedSource, make_hub, serve_app


@pytest.fixture(autouse=True)
def _inline() -> Iterator[None]:
    with blocking_calls_inline():
        yield


def scripted(
    kind: str = "scripted", cadence: Cadence | None = None, script: list[Any] | None = None
) -> type[ScriptedSource]:
    attrs: dict[str, Any] = {"kind": kind, "script": script or [], "calls": []}
    if cadence is not None:
        attrs["cadence"] = cadence
    return type(f"Scripted_{kind}", (ScriptedSource,), attrs)


def moving(devices: Sequence[DeviceRef], cursors: dict[str, Cursor]) -> PollResult:
    """One fix per device per poll, one second after its cursor (or at EPOCH)."""
    result = PollResult()
    for d in devices:
        last = cursors[d.upstream_id].last_fix_time
        t = last + timedelta(seconds=1) if last else EPOCH
        result.add(d.upstream_id, PositionFix(t, 14.6, -90.5, speed_kmh=40.0, ignition=True))
    return result


def setup(
    tmp_path: Path, *sources: type[ScriptedSource], devices: int = 2
) -> tuple[Any, dict[str, int]]:
    hub = make_hub(tmp_path, *sources, clock=TrioClock(EPOCH))
    client = hub.store.create_client("acme")
    ids: dict[str, int] = {}
    for src in sources:
        conn = hub.store.create_connection(client.id, src.kind, f"{src.kind} account", {})
        ids[src.kind] = conn.id
        for i in range(devices):
            hub.store.create_device(
                client.id,
                name=f"{src.kind} {i}",
                connection_id=conn.id,
                upstream_id=f"{src.kind}-{i}",
            )
    return hub, ids


async def run_for(hub: Any, seconds: float) -> None:
    async with trio.open_nursery() as nursery:
        await nursery.start(hub.run)
        await trio.sleep(seconds)
        hub.shutdown()


async def test_polls_on_cadence_and_advances_cursors(tmp_path: Path, autojump_clock: Any) -> None:
    src = scripted(script=[moving])
    hub, ids = setup(tmp_path, src)
    await run_for(hub, 35)
    times = [round(c[0]) for c in src.calls]
    assert times == [0, 10, 20, 30]
    # every poll after the first sees the cursors the previous one committed
    assert src.calls[0][2]["scripted-0"] == Cursor()
    assert src.calls[2][2]["scripted-0"].last_fix_time == EPOCH + timedelta(seconds=1)
    assert hub.store.positions.count() == 8
    conn = hub.store.get_connection(ids["scripted"])
    assert conn.state == ConnectionState.OK and conn.positions_received == 8
    assert conn.last_success_at == EPOCH + timedelta(seconds=30)


async def test_restart_neither_reingests_nor_skips(tmp_path: Path, autojump_clock: Any) -> None:
    src = scripted(script=[moving])
    hub, _ = setup(tmp_path, src, devices=1)
    await run_for(hub, 15)
    assert hub.store.positions.count() == 2
    hub2 = type(hub)(hub.store, hub.registry, hub.plugins, clock=hub.clock, settings=hub.settings)
    await run_for(hub2, 5)
    rows, _ = hub.store.positions.history([1])
    assert [r["fix_time"] for r in rows] == [EPOCH + timedelta(seconds=s) for s in range(3)]


async def test_invalid_auth_stops_until_credentials_change(
    tmp_path: Path, autojump_clock: Any
) -> None:
    src = scripted(script=[InvalidAuth("token revoked")])
    hub, ids = setup(tmp_path, src)
    async with trio.open_nursery() as nursery:
        await nursery.start(hub.run)
        await trio.sleep(100)
        assert len(src.calls) == 1
        conn = hub.store.get_connection(ids["scripted"])
        assert conn.state == ConnectionState.NEEDS_REAUTH and "token revoked" in conn.last_error
        assert ids["scripted"] not in hub.runners
        src.script[:] = [moving]
        hub.store.update_connection(ids["scripted"], credentials={"name": "new"})
        await hub.reload_connection(ids["scripted"])
        await trio.sleep(1)
        assert len(src.calls) == 2
        assert hub.store.get_connection(ids["scripted"]).state == ConnectionState.OK
        hub.shutdown()


async def test_bad_config_stops_with_the_field(tmp_path: Path, autojump_clock: Any) -> None:
    src = scripted(script=[BadConfig("credentials.server_url", "not a URL")])
    hub, ids = setup(tmp_path, src)
    await run_for(hub, 60)
    conn = hub.store.get_connection(ids["scripted"])
    assert conn.state == ConnectionState.BAD_CONFIG
    assert "credentials.server_url: not a URL" in conn.last_error
    assert len(src.calls) == 1


async def test_failures_back_off_and_log_once(
    tmp_path: Path, autojump_clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    src = scripted(script=[CannotConnect("connection refused")] * 6 + [moving])
    hub, ids = setup(tmp_path, src)
    caplog.set_level(logging.DEBUG, logger="hub.runner")
    async with trio.open_nursery() as nursery:
        await nursery.start(hub.run)
        await trio.sleep(1)
        conn = hub.store.get_connection(ids["scripted"])
        assert conn.state == ConnectionState.FAILING and conn.last_error == "connection refused"
        await trio.sleep(2000)
        hub.shutdown()
    gaps = [b[0] - a[0] for a, b in zip(src.calls, src.calls[1:], strict=False)]
    # each wait lies in [ceiling/2, ceiling] for ceiling = 10 s · 2^(n-1), capped
    for n, gap in enumerate(gaps[:6], start=1):
        ceiling = min(MAX_BACKOFF, 10 * 2 ** (n - 1))
        assert ceiling / 2 <= gap <= ceiling + 1e-6, (n, gap)
    assert gaps[6] == pytest.approx(10)  # normal cadence again after recovery
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    infos = [r for r in caplog.records if "recovered" in r.getMessage()]
    assert len(warnings) == 1 and "connection refused" in warnings[0].getMessage()
    assert len(infos) == 1 and "6 failed" in infos[0].getMessage()
    assert hub.store.get_connection(ids["scripted"]).state == ConnectionState.OK


async def test_rate_limit_honours_retry_after(tmp_path: Path, autojump_clock: Any) -> None:
    src = scripted(script=[RateLimited("429", retry_after=120), moving])
    hub, ids = setup(tmp_path, src)
    async with trio.open_nursery() as nursery:
        await nursery.start(hub.run)
        await trio.sleep(1)
        conn = hub.store.get_connection(ids["scripted"])
        assert conn.state == ConnectionState.RATE_LIMITED
        assert conn.next_poll_at == EPOCH + timedelta(seconds=120)
        await trio.sleep(125)
        hub.shutdown()
    assert [round(c[0]) for c in src.calls[:2]] == [0, 120]


async def test_garbage_from_one_source_never_disturbs_another(
    tmp_path: Path, autojump_clock: Any
) -> None:
    def garbage(devices: Any, cursors: Any) -> PollResult:
        return {"not": "a result"}["missing"]  # type: ignore[return-value]

    def bad_fix(devices: Sequence[DeviceRef], cursors: Any) -> PollResult:
        r = PollResult()
        r.add(devices[0].upstream_id, PositionFix(EPOCH, 123.0, 0.0))  # latitude out of range
        return r

    broken = scripted("broken", script=[garbage])
    invalid = scripted("invalid", script=[bad_fix])
    healthy = scripted("healthy", script=[moving])
    hub, ids = setup(tmp_path, broken, invalid, healthy)
    await run_for(hub, 45)
    assert [round(c[0]) for c in healthy.calls] == [0, 10, 20, 30, 40]
    assert hub.store.get_connection(ids["broken"]).state == ConnectionState.FAILING
    assert "KeyError" in hub.store.get_connection(ids["broken"]).last_error
    assert hub.store.get_connection(ids["invalid"]).state == ConnectionState.OK
    assert hub.pipeline.stats.invalid == len(invalid.calls)
    assert hub.store.get_connection(ids["healthy"]).positions_received == 10


def sloppy(devices: Sequence[DeviceRef], cursors: dict[str, Cursor]) -> PollResult:
    """A moving fix per device, plus a plugin's mistakes: a latitude out of range, a
    naive time (newer than the good fix: it must never reach the cursor's comparison)
    and a fix of a device it was not asked about."""
    result = moving(devices, cursors)
    first = devices[0].upstream_id
    t = result.fixes[first][0].fix_time
    result.add(first, PositionFix(t + timedelta(seconds=1), 123.0, 0.0))
    result.add(first, PositionFix((t + timedelta(seconds=5)).replace(tzinfo=None), 1.0, 1.0))
    result.add("stranger", PositionFix(t, 1.0, 1.0))
    return result


async def test_dropped_fixes_are_counted_in_the_status_and_the_connection_stays_ok(
    tmp_path: Path, autojump_clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    src = scripted(script=[sloppy])
    hub, ids = setup(tmp_path, src)
    caplog.set_level(logging.DEBUG, logger="hub.runner")
    await run_for(hub, 25)  # polls at 0, 10 and 20 s
    conn = hub.store.get_connection(ids["scripted"])
    assert conn.state == ConnectionState.OK and conn.last_error is None
    assert conn.state_message == (
        "polling 2 device(s); 9 fixes dropped since 2026-01-01 00:00 UTC: device scripted-0:"
        " lat 123.0 is not a latitude in [-90, 90]"
    )
    assert conn.positions_received == 6  # the good ones, cursors advanced by them only
    assert src.calls[2][2]["scripted-0"].last_fix_time == EPOCH + timedelta(seconds=1)
    assert (hub.pipeline.stats.invalid, hub.pipeline.stats.unknown_device) == (6, 3)
    said = [r for r in caplog.records if "the source sent" in r.getMessage()]
    assert [r.levelno for r in said] == [logging.WARNING, logging.DEBUG, logging.DEBUG]
    assert "dropped 3 fix(es) the source sent; first: device scripted-0: lat 123.0" in (
        said[0].getMessage()
    )


def test_a_naive_fix_time_is_refused_naming_the_field() -> None:
    naive = PositionFix(EPOCH.replace(tzinfo=None), 1.0, 1.0)
    with pytest.raises(BadConfig) as caught:
        naive.validate()
    assert str(caught.value) == "fix_time: must be timezone-aware"
    with pytest.raises(BadConfig, match="fix_time: must be a datetime, not str"):
        PositionFix("2026-01-01T00:00:00Z", 1.0, 1.0).validate()  # type: ignore[arg-type]


async def test_disable_and_enable_restart_the_runner(tmp_path: Path, autojump_clock: Any) -> None:
    src = scripted(script=[moving])
    hub, ids = setup(tmp_path, src)
    async with trio.open_nursery() as nursery:
        await nursery.start(hub.run)
        await trio.sleep(15)
        assert len(src.calls) == 2
        hub.store.update_connection(ids["scripted"], enabled=False)
        await hub.reload_connection(ids["scripted"])
        await trio.sleep(100)
        assert len(src.calls) == 2 and ids["scripted"] not in hub.runners
        hub.store.update_connection(ids["scripted"], enabled=True)
        await hub.reload_connection(ids["scripted"])
        await trio.sleep(1)
        assert len(src.calls) == 3
        hub.shutdown()


async def test_adaptive_cadence(tmp_path: Path, autojump_clock: Any) -> None:
    def parked(devices: Sequence[DeviceRef], cursors: dict[str, Cursor]) -> PollResult:
        result = moving(devices, cursors)
        for fixes in result.fixes.values():
            for f in fixes:
                f.speed_kmh, f.ignition = 0.0, False
        return result

    cadence = Cadence(active=30, quiet=120, active_window=100, jitter=0)
    src = scripted(cadence=cadence, script=[moving, moving, parked])
    hub, _ = setup(tmp_path, src)
    await run_for(hub, 500)
    times = [round(c[0]) for c in src.calls]
    # moving at 0 and 30, parked from 60 on: the poll at 120 is still within 100 s of
    # the last movement (30), so the next is at 150; from then on every 120 s
    assert times == [0, 30, 60, 90, 120, 150, 270, 390]


async def test_a_connection_never_active_turns_quiet_after_one_window(
    tmp_path: Path, autojump_clock: Any
) -> None:
    """A source whose fixes never show movement (no speed, no ignition: Find Hub's) is
    polled at the active cadence for one active window after its runner starts, then at
    the quiet one."""

    def still(devices: Sequence[DeviceRef], cursors: dict[str, Cursor]) -> PollResult:
        result = moving(devices, cursors)
        for fixes in result.fixes.values():
            for f in fixes:
                f.speed_kmh, f.ignition = None, None
        return result

    cadence = Cadence(active=30, quiet=120, active_window=100, jitter=0)
    src = scripted(cadence=cadence, script=[still])
    hub, _ = setup(tmp_path, src)
    await run_for(hub, 500)
    assert [round(c[0]) for c in src.calls] == [0, 30, 60, 90, 120, 240, 360, 480]


def test_backoff_is_capped() -> None:
    import random

    rng = random.Random(1)
    assert all(backoff_delay(n, 30, rng) <= MAX_BACKOFF for n in range(1, 40))
    assert backoff_delay(1, 30, rng) >= 15


async def test_errors_never_store_a_secret(tmp_path: Path, autojump_clock: Any) -> None:
    class Leaky(ScriptedSource):
        kind = "leaky"
        script: ClassVar[list[Any]] = []
        calls: ClassVar[list[Any]] = []

        class Credentials(BaseModel):
            password: SecretStr

        async def poll(self, devices: Any, cursors: Any) -> PollResult:
            secret = self.ctx.credentials.password.get_secret_value()
            raise CannotConnect(f"login as x:{secret} refused")

    hub = make_hub(tmp_path, Leaky, clock=TrioClock(EPOCH))
    client = hub.store.create_client("acme")
    conn = hub.store.create_connection(client.id, "leaky", "l", {"password": "PW-MARKER-123"})
    hub.store.create_device(client.id, name="d", connection_id=conn.id, upstream_id="1")
    await run_for(hub, 5)
    error = hub.store.get_connection(conn.id).last_error
    assert "PW-MARKER-123" not in error and "refused" in error


async def test_a_connection_without_devices_is_idle_and_says_why(
    tmp_path: Path, autojump_clock: Any
) -> None:
    src = scripted(script=[moving])
    hub, ids = setup(tmp_path, src, devices=0)
    async with trio.open_nursery() as nursery:
        await nursery.start(hub.run)
        await trio.sleep(25)
        assert src.calls == []  # nothing to poll, nothing reported ok
        conn = hub.store.get_connection(ids["scripted"])
        assert conn.state == ConnectionState.IDLE and conn.last_error is None
        assert conn.state_message == (
            "no devices to poll: import or link devices of the account; "
            "account: scripted source ready"
        )
        assert conn.next_poll_at is not None and conn.next_poll_at > hub.clock.now()
        # an import restarts the runner: it polls at once and reports ok
        hub.store.create_device(
            conn.client_id, name="d", connection_id=conn.id, upstream_id="scripted-0"
        )
        await hub.reload_connection(conn.id)
        await trio.sleep(1)
        conn = hub.store.get_connection(ids["scripted"])
        assert len(src.calls) == 1 and conn.state == ConnectionState.OK
        assert conn.state_message == "polling 1 device(s)"
        hub.shutdown()


class Refusing(ScriptedSource):
    kind = "refusing"
    checks: ClassVar[list[float]] = []
    outcome: ClassVar[list[Exception]] = [InvalidAuth("wrong token")]

    async def test_connection(self) -> str:
        type(self).checks.append(trio.current_time())
        raise self.outcome[min(len(self.checks), len(self.outcome)) - 1]


async def test_a_connection_without_devices_has_its_credentials_checked(
    tmp_path: Path, autojump_clock: Any
) -> None:
    """Saved without testing and nothing imported: wrong credentials still show, and
    ``next_poll_at`` is empty while it waits for new ones."""
    hub, ids = setup(tmp_path, Refusing, devices=0)
    await run_for(hub, 100)
    conn = hub.store.get_connection(ids["refusing"])
    assert len(Refusing.checks) == 1
    assert conn.state == ConnectionState.NEEDS_REAUTH and "wrong token" in conn.last_error
    assert conn.next_poll_at is None and "wrong token" in conn.state_message


async def test_an_idle_check_that_cannot_connect_is_retried_with_backoff(
    tmp_path: Path, autojump_clock: Any
) -> None:
    src = type(
        "Unreachable",
        (Refusing,),
        {
            "kind": "unreachable",
            "checks": [],
            "outcome": [
                CannotConnect("refused"),
                *[CannotConnect("refused")] * 2,
                BadConfig("credentials.server_url", "no such host"),
            ],
        },
    )
    hub, ids = setup(tmp_path, src, devices=0)
    async with trio.open_nursery() as nursery:
        await nursery.start(hub.run)
        await trio.sleep(5)
        conn = hub.store.get_connection(ids["unreachable"])
        assert conn.state == ConnectionState.IDLE
        assert "could not be checked: refused" in conn.state_message
        await trio.sleep(600)
        hub.shutdown()
    checks = src.checks
    assert 3 < len(checks) < 60  # retried, with backoff (not every 10 s interval)
    conn = hub.store.get_connection(ids["unreachable"])
    assert conn.state == ConnectionState.BAD_CONFIG and conn.next_poll_at is None


def renaming(names: dict[str, str]) -> Any:
    """A poll step reporting the upstream's current names (and a plate) for its devices."""

    def step(devices: Sequence[DeviceRef], cursors: dict[str, Cursor]) -> PollResult:
        return PollResult(
            devices={
                d.upstream_id: RemoteDevice(
                    d.upstream_id,
                    names.get(d.upstream_id, d.name),
                    imei="356307042441013",
                    license_plate="AB-123",
                )
                for d in devices
            }
            | {"not-ours": RemoteDevice("not-ours", "stranger")}
        )

    return step


async def test_upstream_names_and_plates_are_synced_but_local_edits_stick(
    tmp_path: Path, autojump_clock: Any
) -> None:
    names = {"scripted-0": "Truck 7"}
    src = scripted(script=[renaming(names)])
    hub, _ = setup(tmp_path, src)
    await run_for(hub, 5)
    first, second = hub.store.list_devices(None)
    assert (first.name, first.imei, first.license_plate) == ("Truck 7", "356307042441013", "AB-123")
    assert second.name == "scripted 1" and second.license_plate == "AB-123"
    hub.store.update_device(first.id, name="My truck")  # a local rename

    def again() -> Any:
        return type(hub)(
            hub.store, hub.registry, hub.plugins, clock=hub.clock, settings=hub.settings
        )

    # later polls, and a restart, do not undo it: what was applied is remembered
    await run_for(again(), 25)
    assert hub.store.get_device(first.id).name == "My truck"
    names["scripted-0"] = "Truck 7b"  # renamed upstream: that wins again
    await run_for(again(), 5)
    assert hub.store.get_device(first.id).name == "Truck 7b"
    assert len(hub.store.list_devices(None)) == 2  # nobody else's device was made


class UrlSource(ScriptedSource):
    kind = "urlsrc"
    script: ClassVar[list[Any]] = []
    calls: ClassVar[list[Any]] = []

    class Credentials(BaseModel):
        server_url: UpstreamUrl


async def test_a_blocked_server_url_stops_the_runner_as_bad_config(
    tmp_path: Path, autojump_clock: Any
) -> None:
    hub = make_hub(tmp_path, UrlSource, clock=TrioClock(EPOCH))
    client = hub.store.create_client("acme")
    conn = hub.store.create_connection(
        client.id, "urlsrc", "internal", {"server_url": "http://10.1.2.3:8082"}
    )
    hub.store.create_device(client.id, name="d", connection_id=conn.id, upstream_id="1")
    await run_for(hub, 25)
    assert UrlSource.calls == []
    saved = hub.store.get_connection(conn.id)
    assert saved.state == ConnectionState.BAD_CONFIG
    assert "credentials.server_url" in (saved.last_error or "")
    assert "private address" in (saved.last_error or "")


class Fetching(ScriptedSource):
    """Asks a loopback server for its one fix, like a cloud source."""

    kind = "fetching"
    url: ClassVar[str] = ""

    async def poll(self, devices: Sequence[DeviceRef], cursors: Any) -> PollResult:
        answer = (await self.ctx.http.get(self.url)).json()
        result = PollResult()
        for d in devices:
            fix = PositionFix(EPOCH + timedelta(seconds=answer["t"]), 14.6, -90.5)
            if d.upstream_id.endswith("-1"):
                fix.source_ip, fix.source_port = "203.0.113.9", 5027  # the source knows better
            result.add(d.upstream_id, fix)
        return result


@pytest.fixture
def loopback_clock() -> MockClock:
    """A mock clock that jumps only once loopback requests had time to complete."""
    return MockClock(autojump_threshold=0.02)


async def test_fixes_from_an_upstream_carry_its_address(
    tmp_path: Path, loopback_clock: MockClock
) -> None:
    """The address the data came from (Startrack's ``ip``/``port``) is the upstream's,
    unless the source gives the device's own."""
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def fix(request: Any) -> JSONResponse:
        return JSONResponse({"t": 5})

    app = Starlette(routes=[Route("/fix", fix)])
    async with trio.open_nursery() as nursery:
        base = await nursery.start(serve_app, app)
        Fetching.url = f"{base}/fix"
        hub = make_hub(
            tmp_path, Fetching, clock=TrioClock(EPOCH), outbound_allow_networks=LOOPBACK_NETWORKS
        )
        client = hub.store.create_client("acme")
        conn = hub.store.create_connection(client.id, "fetching", "f", {})
        for i in range(2):
            hub.store.create_device(
                client.id, name=f"d{i}", connection_id=conn.id, upstream_id=f"fetching-{i}"
            )
        await run_for(hub, 5)
        nursery.cancel_scope.cancel()
    rows, _ = hub.store.positions.history([1, 2])
    port = int(base.rsplit(":", 1)[1])
    by_device = {r["device_id"]: (r["source_ip"], r["source_port"]) for r in rows}
    assert by_device == {1: ("127.0.0.1", port), 2: ("203.0.113.9", 5027)}


async def test_a_sources_notices_are_shown_in_the_connections_status(
    tmp_path: Path, autojump_clock: Any
) -> None:
    def noting(devices: Sequence[DeviceRef], cursors: dict[str, Cursor]) -> PollResult:
        result = moving(devices, cursors)
        result.notices.append("batch size reduced to 25")
        return result

    src = scripted(script=[noting, moving])
    hub, ids = setup(tmp_path, src)
    async with trio.open_nursery() as nursery:
        await nursery.start(hub.run)
        await trio.sleep(5)
        conn = hub.store.get_connection(ids["scripted"])
        assert conn.state_message == "polling 2 device(s); batch size reduced to 25"
        await trio.sleep(10)  # gone once the source stops giving it
        assert hub.store.get_connection(ids["scripted"]).state_message == "polling 2 device(s)"
        hub.shutdown()
