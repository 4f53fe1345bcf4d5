"""The ``gpshub`` command line.

Every command works on the data directory (or database) named by the global options,
the ``GPSHUB_*`` environment or ``gpshub.toml``; ``serve`` runs the hub and its API.
"""

from __future__ import annotations

import argparse
import csv
import functools
import gc
import getpass
import json
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape

from hub.cli_output import (
    StdoutConsole,
    fixed,
    numeric,
    print_json,
    print_table,
    quiet_stdout,
    text,
    when,
)
from hub.config import Settings
from hub.errors import HubError, SourceError
from hub.logging_setup import configure_logging
from hub.roles import Role
from hub.store_errors import Conflict, Invalid, NotFound

if TYPE_CHECKING:
    from rich.progress import Progress

    from hub.store import Store

# Heavy modules (the store, trio, the web app, pydantic, rich's progress bars) are
# imported by the commands that use them: ``--help``, ``--version``, ``plugins`` and a
# parse error start without SQLAlchemy (tests/test_startup.py holds that).

console = Console(stderr=True)
out = StdoutConsole()

DEMO_CLIENT = "Demo"
DEMO_CONNECTION = "Demo city route"
DEMO_DEVICE = "demo-1"
DEMO_VEHICLE = "Demo vehicle"


class CliError(Exception):
    """A message for the user; the command exits with status 2."""


# -- helpers ---------------------------------------------------------------------------
def _settings(args: argparse.Namespace, **extra: Any) -> Settings:
    return Settings.load(
        Path(args.config) if args.config else None,
        data_dir=args.data_dir,
        database_url=args.database_url,
        **extra,
    )


def _open_hub(args: argparse.Namespace, **extra: Any) -> Any:
    from hub.core import Hub

    return Hub.open(_settings(args, **extra))


@dataclass
class _StoreOnly:
    """What a command that needs only the database opens: the store, as ``hub.store``,
    without the plugins, runners and services ``Hub.open`` imports and sets up."""

    store: Store


def _open_store(args: argparse.Namespace) -> _StoreOnly:
    from hub.store import Store

    return _StoreOnly(Store.for_settings(_settings(args)))


def _client_id(hub: Any, name_or_id: str | None) -> int:
    clients = hub.store.list_clients()
    if name_or_id is None:
        if len(clients) == 1:
            return int(clients[0].id)
        raise CliError("say which client with --client (name or id): " + _names(clients))
    for c in clients:
        if c.name == name_or_id or str(c.id) == name_or_id:
            return int(c.id)
    raise CliError(f"no client {name_or_id!r}; known: {_names(clients)}")


def _names(clients: Sequence[Any]) -> str:
    return (
        ", ".join(f"{c.id}={c.name}" for c in clients)
        or "none (create one: gpshub client add NAME)"
    )


def _print_json(data: Any) -> None:
    print_json(data)


def _parse_pairs(pairs: Sequence[str], what: str) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise CliError(f"{what} {pair!r}: expected KEY=VALUE")
        if value.startswith("@"):
            value = sys.stdin.read() if value == "@-" else Path(value[1:]).read_text()
        result[key] = value
    return result


def _progress() -> Progress:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


# -- serve -----------------------------------------------------------------------------
def cmd_serve(args: argparse.Namespace) -> None:
    # Start-up (imports, plugins, the store, the app) makes a great many objects and
    # hardly any garbage: the cycle collector's passes over them cost a sixth of the
    # time to readiness. It is off until the hub listens (``_serve``), or fails to.
    collecting = gc.isenabled()
    gc.disable()
    try:
        _run_serve(args, collecting)
    finally:
        if collecting:
            gc.enable()


def _run_serve(args: argparse.Namespace, collecting: bool) -> None:
    overrides = {
        "host": args.host,
        "port": args.port,
        "log_format": args.log_format,
        "metrics_listen": args.metrics_listen,
    }
    settings = _settings(args, **overrides)
    configure_logging(settings.log_level, settings.log_format)
    import trio

    from hub.core import Hub
    from hub.web.app import ListenError

    hub = Hub.open(settings)
    # with JSON logs, standard error carries JSON lines only: what is for people (the
    # address, a new administrator token) goes to standard output
    say = Console() if settings.log_format == "json" else console
    try:
        if args.demo:
            setup_demo(hub, say)
        trio.run(functools.partial(_serve, hub, settings, say, collecting, demo=args.demo))
    except BaseExceptionGroup as group:  # what trio wraps a failed start in
        matched, _ = group.split(ListenError)
        if matched is None:
            raise
        raise CliError(str(_first(matched))) from None
    except ListenError as exc:
        raise CliError(str(exc)) from None
    finally:
        hub.store.close()


def _first(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup):
        exc = exc.exceptions[0]
    return exc


async def _serve(
    hub: Any,
    settings: Settings,
    say: Console,
    collecting: bool = True,
    *,
    freeze: bool = True,
    demo: bool = False,
) -> None:
    """Run the hub and its API until a signal; ``freeze``: leave the start-up heap out of
    the cycle collector once it serves (``hub.heap``; not in a process that starts many).
    ``demo`` on a first start with pages served at ``/`` (the dashboard): the administrator
    gets a password too, shown once, so the page can be signed in to at once.

    SIGINT and SIGTERM are taken from the start: one that comes while the hub starts
    stops the start-up, one that comes once it serves finishes the batch in flight.
    """
    import trio

    from hub.blocking import run_blocking
    from hub.heap import freeze_startup_heap
    from hub.web.app import serve

    serving = False

    async def stop_on_signal(signals: Any, nursery: trio.Nursery) -> None:
        async for signum in signals:
            name = signal.Signals(signum).name
            if serving:
                say.print(f"{name}: finishing the batch in flight, then exiting")
                hub.shutdown()
            else:
                say.print(f"{name}: stopping the start-up")
                nursery.cancel_scope.cancel()
            return

    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(stop_on_signal, signals, nursery)
            url = await nursery.start(
                functools.partial(
                    hub.run, serve=functools.partial(serve, hub, settings.host, settings.port)
                )
            )
            serving = True
            if freeze:
                freeze_startup_heap()
            if collecting:
                gc.enable()  # off since cmd_serve began
            say.print(f"gpshub is listening on [bold]{url}[/]  (data: {settings.data_dir})")
            if hub.metrics.url:
                say.print(f"Prometheus metrics, no token needed: {hub.metrics.url}")
            # only now that the hub serves: a start that failed leaves no token unseen
            token = await run_blocking(hub.store.bootstrap_admin)
            if token:
                say.print(
                    "[bold yellow]Administrator API token (shown once, keep it safe):[/]\n"
                    f"  {token}\n"
                    f"Try: curl -H 'Authorization: Bearer {token}' {url}/api/devices/latest",
                    soft_wrap=True,
                )
                if demo and _serves_pages(hub):
                    password = await _demo_password(hub)
                    say.print(
                        f"[bold yellow]Dashboard:[/] {url}/  sign in as [bold]admin[/], password"
                        f" [bold]{password}[/] (shown once; change it there, or with"
                        " `gpshub user passwd admin`)",
                        soft_wrap=True,
                    )


def _serves_pages(hub: Any) -> bool:
    """Whether a plugin serves pages at ``/`` (``register_pages``: the dashboard)."""
    pm = getattr(hub, "plugin_manager", None)
    return pm is not None and bool(pm.hook.register_pages.get_hookimpls())


async def _demo_password(hub: Any) -> str:
    """A new random password for the administrator made at first start."""
    import secrets

    from hub.blocking import run_blocking
    from hub.passwords import hash_password_async

    password = secrets.token_urlsafe(12)
    hashed = await hash_password_async(password)
    users = await run_blocking(hub.store.list_users)
    admin = next(u for u in users if u.client_id is None and u.name == "admin")
    await run_blocking(hub.store.sessions.set_password, admin.id or 0, hashed)
    return password


def setup_demo(hub: Any, say: Console = console) -> None:
    """The demo client, a simulator connection on the built-in city route, one device."""
    if "simulator" not in hub.registry.sources:
        raise CliError("--demo needs the simulator plugin: install gpshub-simulator")
    from gpshub_simulator import DEMO_ROUTE

    store = hub.store
    client = store.client_by_name(DEMO_CLIENT) or store.create_client(DEMO_CLIENT)
    conns = [c for c in store.list_connections(client.id) if c.label == DEMO_CONNECTION]
    conn = (
        conns[0]
        if conns
        else store.create_connection(
            client.id,
            "simulator",
            DEMO_CONNECTION,
            {"waypoints": DEMO_ROUTE, "speed_kmh": 40, "loop": True},
        )
    )
    devices = store.list_devices(client.id, conn.id)
    if not devices:
        devices = [
            store.create_device(
                client.id,
                name=DEMO_VEHICLE,
                license_plate="DEMO-001",
                remote_id=DEMO_DEVICE,
                connection_id=conn.id,
                upstream_id=DEMO_DEVICE,
                tags=["demo"],
            )
        ]
    # the device as the API names it (it may have been renamed since it was made)
    shown = ", ".join(f"device #{d.id} {d.name!r} (remote id {d.remote_id})" for d in devices)
    say.print(
        f"Demo: client {client.name!r}, connection #{conn.id} {conn.label!r}, {shown}",
        soft_wrap=True,
        markup=False,
    )


# -- plugins ---------------------------------------------------------------------------
def cmd_plugins(args: argparse.Namespace) -> None:
    from hub.plugins import disabled_from_env, load_plugins
    from hub.registry import Registry

    disabled = disabled_from_env()
    pm, infos = load_plugins(disabled)
    Registry.collect(pm, infos)
    if args.json:
        _print_json(
            {"plugins": [i.as_dict() for i in infos.values()], "disabled": sorted(disabled)}
        )
        return
    if not infos:
        out.print(
            "No plugins installed: the hub has no sources. Install one, e.g. gpshub-simulator."
        )
        return
    columns = [
        fixed("name"),
        text("distribution"),
        fixed("version"),
        text("sources"),
        text("sinks"),
        text("formats"),
    ]
    rows = [
        [
            i.name,
            i.distribution,
            i.version,
            ", ".join(i.kinds["sources"]),
            ", ".join(i.kinds["sinks"]),
            ", ".join(i.kinds["formats"]),
        ]
        for i in infos.values()
    ]
    print_table(columns, rows)


# -- clients and tokens ----------------------------------------------------------------
def cmd_client_add(args: argparse.Namespace) -> None:
    hub = _open_store(args)
    client = hub.store.create_client(args.name)
    out.print(f"client {client.id}: {client.name}")


def cmd_client_list(args: argparse.Namespace) -> None:
    hub = _open_store(args)
    rows = [{"id": c.id, "name": c.name} for c in hub.store.list_clients()]
    if args.json:
        _print_json(rows)
    else:
        for r in rows:
            out.print(f"{r['id']:>4}  {r['name']}")


def cmd_token_create(args: argparse.Namespace) -> None:
    expires_at = _token_expiry(args.expires_in, args.expires_at)
    hub = _open_store(args)
    store = hub.store
    if args.client is None:
        client_id = None
        role = Role.ADMIN
    else:
        client_id = _client_id(hub, args.client)
        role = args.role or Role.MANAGER
    users = [
        u for u in store.list_users(client_id) if u.name == args.user and u.client_id == client_id
    ]
    if args.scope == "metrics" and client_id is not None:
        raise CliError("a metrics token is the system administrator's: omit --client")
    user = users[0] if users else store.create_user(args.user, role, client_id)
    row, plain = store.create_token(
        user.id,
        args.name or "created with gpshub token create",
        args.scope,
        expires_at=expires_at,
    )
    until = f", expires {_when(row.expires_at)}" if row.expires_at else ""
    console.print(
        f"token {row.id} for {user.name!r} ({user.role}{'' if client_id is None else f', client {client_id}'}{until}), shown once:"
    )
    out.print(plain)


def cmd_user_passwd(args: argparse.Namespace) -> None:
    """Set a user's password: prompted twice, or one line of stdin with --stdin."""
    from hub.passwords import hash_password, password_problem

    hub = _open_store(args)
    store = hub.store
    client_id = None if args.client is None else _client_id(hub, args.client)
    users = [
        u for u in store.list_users(client_id) if u.name == args.name and u.client_id == client_id
    ]
    if not users:
        where = "among the administrators" if client_id is None else f"in client {client_id}"
        raise CliError(f"no user {args.name!r} {where} (a client's user needs --client)")
    if args.stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass(f"new password for {args.name}: ")
        if getpass.getpass("again: ") != password:
            raise CliError("the two passwords differ; nothing changed")
    problem = password_problem(password)
    if problem:
        raise CliError(f"password: {problem}; nothing changed")
    store.sessions.set_password(users[0].id, hash_password(password))
    console.print(f"password of {args.name!r} set; its browser sessions are ended")


_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def _token_expiry(expires_in: str | None, expires_at: str | None) -> datetime | None:
    """``--expires-in 30d`` (s, m, h, d or w) or ``--expires-at`` an ISO 8601 time with
    its time zone, as an aware datetime; ``None``: the token never expires."""
    if expires_in is not None:
        text = expires_in.strip().lower()
        unit = _DURATION_UNITS.get(text[-1:])
        try:
            amount = float(text[:-1]) if unit else None
        except ValueError:
            amount = None
        if unit is None or amount is None or not 0 < amount * unit <= 100 * 365 * 86400:
            raise CliError(
                f"--expires-in {expires_in!r}: a positive duration with its unit "
                "(s, m, h, d or w), e.g. 30d or 12h, at most 100 years"
            )
        return datetime.now(UTC) + timedelta(seconds=amount * unit)
    if expires_at is not None:
        try:
            when = datetime.fromisoformat(expires_at.strip())
        except ValueError:
            when = None
        if when is None or when.tzinfo is None:
            raise CliError(
                f"--expires-at {expires_at!r}: an ISO 8601 time with its time zone, "
                "e.g. 2027-01-01T00:00Z"
            )
        return when
    return None


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None


def _when(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if value else ""


def cmd_token_list(args: argparse.Namespace) -> None:
    hub = _open_store(args)
    store = hub.store
    client_id = None if args.client is None else _client_id(hub, args.client)
    users = {u.id: u for u in store.list_users(client_id)}
    if args.user is not None:
        users = {i: u for i, u in users.items() if args.user in (u.name, str(u.id))}
        if not users:
            raise CliError(f"no user {args.user!r}")
    filtered = args.user is not None or client_id is not None
    found = store.list_tokens(list(users) if filtered else None)
    now = datetime.now(UTC)
    if args.json:
        _print_json([_token_json(t, users.get(t.user_id), now) for t in found])
        return
    columns = [
        numeric("id"),
        text("user", 6),
        fixed("role"),
        numeric("client"),
        text("name", 6).optional(1),
        fixed("prefix"),
        fixed("last used").optional(2),
        fixed("expires"),
    ]
    rows = []
    for t in found:
        user = users.get(t.user_id)
        expired = t.expires_at is not None and t.expires_at <= now
        rows.append(
            [
                t.id,
                user.name if user else t.user_id,
                user.role if user else "",
                user.client_id if user and user.client_id is not None else "",
                t.name,
                t.prefix + "…",
                _when(t.last_used_at) or "never",
                ("expired " if expired else "") + (_when(t.expires_at) or "never"),
            ]
        )
    print_table(columns, rows, empty="no tokens")


def _token_json(t: Any, user: Any, now: datetime) -> dict[str, Any]:
    return {
        "id": t.id,
        "user_id": t.user_id,
        "user": user.name if user else None,
        "role": user.role if user else None,
        "client_id": user.client_id if user else None,
        "name": t.name,
        "prefix": t.prefix,
        "created_at": _iso(t.created_at),
        "last_used_at": _iso(t.last_used_at),
        "expires_at": _iso(t.expires_at),
        "expired": t.expires_at is not None and t.expires_at <= now,
    }


def cmd_token_revoke(args: argparse.Namespace) -> None:
    hub = _open_store(args)
    store = hub.store
    known = {t.id: t for t in store.list_tokens()}
    missing = [i for i in args.ids if i not in known]
    if missing:
        raise CliError(f"no token {', '.join(map(str, missing))} (see: gpshub token list)")
    for token_id in args.ids:
        store.delete_token(token_id)
        t = known[token_id]
        out.print(f"revoked token {token_id} ({t.prefix}…, {t.name!r})")


# -- connections -----------------------------------------------------------------------
def cmd_connection_add(args: argparse.Namespace) -> None:
    import trio

    from hub.source import check_upstream_urls, describe_fields, dump_credentials

    hub = _open_hub(args)
    client_id = _client_id(hub, args.client)
    try:
        cls = hub.registry.source(args.kind)
    except KeyError as exc:
        raise CliError(str(exc.args[0])) from None
    raw: dict[str, Any] = {}
    if args.credentials_file:
        raw.update(json.loads(Path(args.credentials_file).read_text()))
    raw.update(_parse_pairs(args.credential, "--credential"))
    for f in describe_fields(cls.Credentials):
        if f.required and f.name not in raw and sys.stdin.isatty():
            prompt = f"{f.label}{' (hidden)' if f.secret else ''}: "
            raw[f.name] = getpass.getpass(prompt) if f.secret else input(prompt)
    parsed = cls.parse_credentials(raw)
    creds = dump_credentials(parsed)
    options = _parse_pairs(args.option, "--option")
    check_upstream_urls(hub.outbound_policy, parsed, cls.parse_options(options))
    if not args.no_test:
        summary = trio.run(hub.test_connection, args.kind, creds, options)
        console.print(f"test connection: {summary}")
    conn = hub.store.create_connection(client_id, args.kind, args.label, creds, options)
    out.print(f"connection {conn.id}: {conn.label} ({conn.kind})")


def cmd_connection_list(args: argparse.Namespace) -> None:
    hub = _open_store(args)
    client_id = _client_id(hub, args.client) if args.client else None
    rows = [
        {
            "id": c.id,
            "client_id": c.client_id,
            "kind": c.kind,
            "label": c.label,
            "enabled": c.enabled,
            "state": c.state,
            "last_poll_at": c.last_poll_at,
            "last_error": c.last_error,
            "positions_received": c.positions_received,
        }
        for c in hub.store.list_connections(client_id)
    ]
    if args.json:
        _print_json(rows)
        return
    columns = [
        numeric("id"),
        numeric("client").optional(2),
        fixed("kind"),
        text("label"),
        fixed("state"),
        fixed("last poll"),
        numeric("positions").optional(1),
        text("last error"),
    ]
    table = [
        [
            r["id"],
            r["client_id"],
            r["kind"],
            r["label"],
            r["state"] if r["enabled"] else "disabled",
            when(r["last_poll_at"]),
            r["positions_received"],
            r["last_error"],
        ]
        for r in rows
    ]
    print_table(columns, table, empty="no connections")


def cmd_connection_test(args: argparse.Namespace) -> None:
    import trio

    hub = _open_hub(args)
    conn = hub.store.get_connection(args.id)
    creds = hub.store.connection_credentials(conn)
    summary = trio.run(
        functools.partial(
            hub.test_connection,
            conn.kind,
            creds,
            conn.options,
            connection_id=conn.id,
            label=conn.label,
        )
    )
    out.print(summary)


def cmd_connection_import(args: argparse.Namespace) -> None:
    import trio

    hub = _open_hub(args)
    conn = hub.store.get_connection(args.id)
    remote = trio.run(hub.browse, conn)
    if args.upstream_id:
        wanted = set(args.upstream_id)
        missing = wanted - {r.upstream_id for r in remote}
        if missing:
            raise CliError(f"not on the account: {', '.join(sorted(missing))}")
        remote = [r for r in remote if r.upstream_id in wanted]
    created = existing = 0
    with _progress() as progress:
        task = progress.add_task(f"importing from {conn.label}", total=len(remote))
        for start in range(0, len(remote), 50):
            chunk = remote[start : start + 50]
            c, e = hub.store.import_devices(conn.id, chunk)
            created, existing = created + len(c), existing + len(e)
            progress.advance(task, len(chunk))
    out.print(f"{created} device(s) created, {existing} already imported")


# -- history ---------------------------------------------------------------------------
def cmd_history_export(args: argparse.Namespace) -> None:
    from hub.cli_objects import QUERY_FLAGS, query_times, refusals
    from hub.web.schemas import HistoryQuery

    hub = _open_store(args)
    with refusals(QUERY_FLAGS):  # --from and --to, read as the API reads them
        query = HistoryQuery.model_validate(
            {k: v for k, v in (("from", args.start), ("to", args.end)) if v is not None}
        )
    scope = _client_id(hub, args.client) if args.client else None
    device = hub.store.get_device(args.device, scope)
    start, end = query_times(hub, device.client_id, query.start, query.end)
    if start and end and end < start:
        raise CliError("--to (to): must not be before `from`")
    total = hub.store.positions.count(device.id)
    stream = open(args.output, "w", newline="") if args.output else sys.stdout  # noqa: SIM115
    try:
        with _progress() as progress:
            task = progress.add_task(f"exporting {device.name}", total=total)
            pages = _pages(hub, device.id, start, end)
            if args.format == "csv":
                _write_csv(stream, device, pages, lambda n: progress.advance(task, n))
            elif args.format == "gpx":
                _write_gpx(stream, device, pages, lambda n: progress.advance(task, n))
            else:
                _write_geojson(stream, device, pages, lambda n: progress.advance(task, n))
            progress.update(task, total=progress.tasks[0].completed)
    finally:
        if args.output:
            stream.close()


def _pages(hub: Any, device_id: int, start: datetime | None, end: datetime | None) -> Any:
    cursor = None
    while True:
        rows, cursor = hub.store.positions.history([device_id], start, end, cursor, limit=5000)
        yield rows
        if cursor is None:
            return


def _write_csv(stream: Any, device: Any, pages: Any, advance: Callable[[int], None]) -> None:
    """The CSV of ``GET /api/devices/{id}/positions?format=csv``: the same columns."""
    from hub.exports import HISTORY_CSV_COLUMNS, history_csv_row

    writer = csv.writer(stream)
    writer.writerow(HISTORY_CSV_COLUMNS)
    for rows in pages:
        writer.writerows(history_csv_row(row, device.name) for row in rows)
        advance(len(rows))


def _write_geojson(stream: Any, device: Any, pages: Any, advance: Callable[[int], None]) -> None:
    """The GeoJSON of ``GET /api/devices/{id}/positions?format=geojson``."""
    from hub.exports import history_feature

    stream.write('{"type":"FeatureCollection","features":[')
    first = True
    for rows in pages:
        for row in rows:
            feature = history_feature(row, device.name)
            stream.write(("" if first else ",") + json.dumps(feature, separators=(",", ":")))
            first = False
        advance(len(rows))
    stream.write("]}\n")


def _write_gpx(stream: Any, device: Any, pages: Any, advance: Callable[[int], None]) -> None:
    """The GPX of ``GET /api/devices/{id}/positions?format=gpx``."""
    from hub.exports import GPX_TAIL, gpx_head, gpx_point

    stream.write(gpx_head(device.name, datetime.now(UTC)))
    for rows in pages:
        stream.write("".join(gpx_point(row) for row in rows))
        advance(len(rows))
    stream.write(GPX_TAIL)


def cmd_secrets_rotate(args: argparse.Namespace) -> None:
    hub = _open_store(args)
    count = hub.store.rotate_secrets()
    out.print(f"re-encrypted {count} secret(s) under the first key of GPSHUB_SECRET_KEY")


# -- backups ---------------------------------------------------------------------------
def cmd_backup(args: argparse.Namespace) -> None:
    from hub.backup import backup_database, key_warning

    settings = _settings(args)
    result = backup_database(settings.db_url, Path(args.file), overwrite=args.force)
    out.print(
        f"backed up {settings.redacted_db_url()} to {result.path} "
        f"({result.size / 2**20:,.1f} MiB, schema revision {result.revision})"
    )
    console.print(f"[bold yellow]warning:[/] {key_warning(settings)}", soft_wrap=True)


# -- plugin authors --------------------------------------------------------------------
def cmd_new_plugin(args: argparse.Namespace) -> None:
    from hub.plugin_template import TemplateError, write_plugin

    try:
        root = write_plugin(args.name, Path(args.dir))
    except TemplateError as exc:
        raise CliError(str(exc)) from None
    out.print(
        f"wrote {root}: a source plugin for a made-up REST API; its README.md says what to"
        f" change. Its tests: cd {root} && pytest (with gpshub[testing] installed)",
        soft_wrap=True,
        markup=False,
    )


# -- the parser ------------------------------------------------------------------------
def build_parser(plugin_manager: Any = None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="gpshub",
        description="gpshub: pull positions from GPS platforms, store them, stream them, deliver them.",
        epilog="Settings also come from GPSHUB_* environment variables and DATA_DIR/gpshub.toml.",
    )
    p.add_argument(
        "--data-dir", help="where the database, key file and config live (GPSHUB_DATA_DIR)"
    )
    p.add_argument("--config", help="a gpshub.toml file (GPSHUB_CONFIG)")
    p.add_argument(
        "--database-url", help="SQLAlchemy URL, e.g. postgresql+psycopg://… (GPSHUB_DATABASE_URL)"
    )
    p.add_argument("--version", action="version", version=f"gpshub {_version()}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    s = sub.add_parser(
        "serve",
        help="run the hub and its API",
        description="Run the hub: poll every enabled connection, store, stream, serve the API.",
    )
    s.add_argument("--data-dir", default=argparse.SUPPRESS, help="as the global --data-dir")
    s.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    s.add_argument("--port", type=int, help="port to listen on (default 8080)")
    s.add_argument(
        "--demo",
        action="store_true",
        help="add a demo client with a simulated vehicle on a city route",
    )
    s.add_argument(
        "--log-format",
        choices=["text", "json"],
        help="text (default) or json: one JSON object per line (GPSHUB_LOG_FORMAT)",
    )
    s.add_argument(
        "--metrics-listen",
        metavar="HOST:PORT",
        help="also serve /metrics without a token here, e.g. 127.0.0.1:9464 (GPSHUB_METRICS_LISTEN)",
    )
    s.set_defaults(func=cmd_serve)

    s = sub.add_parser("plugins", help="list installed plugins and what they register")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_plugins)

    client = sub.add_parser("client", help="manage clients (tenants)").add_subparsers(
        dest="action", required=True
    )
    s = client.add_parser("add", help="create a client")
    s.add_argument("name")
    s.set_defaults(func=cmd_client_add)
    s = client.add_parser("list", help="list clients")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_client_list)

    user = sub.add_parser("user", help="users").add_subparsers(dest="action", required=True)
    s = user.add_parser(
        "passwd",
        help="set a user's password (for signing in to the dashboard)",
        description="Set a user's password: asked for twice, or read from one line of "
        "standard input with --stdin. 10 to 1024 characters. The user's browser sessions "
        "end; its API tokens keep working.",
    )
    s.add_argument("name", help="the user's name")
    s.add_argument(
        "--client", help="the user's client (name or id); omit for a system administrator"
    )
    s.add_argument("--stdin", action="store_true", help="read the password from stdin (scripts)")
    s.set_defaults(func=cmd_user_passwd)

    token = sub.add_parser("token", help="API tokens").add_subparsers(dest="action", required=True)
    s = token.add_parser(
        "create",
        help="create an API token (shown once)",
        description="Create an API token for a user, creating the user if needed. Without --client the user is a system administrator.",
    )
    s.add_argument("--user", default="admin", help="user name (default admin)")
    s.add_argument(
        "--client", help="the user's client (name or id); omit for a system administrator"
    )
    s.add_argument(
        "--role",
        choices=[Role.MANAGER, Role.VIEWER],
        help="role of a new client user (default manager)",
    )
    s.add_argument("--name", help="a note on what the token is for")
    s.add_argument(
        "--scope",
        choices=["all", "metrics"],
        default="all",
        help="metrics: the token may only read /metrics (for a Prometheus server)",
    )
    when = s.add_mutually_exclusive_group()
    when.add_argument(
        "--expires-in",
        metavar="DURATION",
        help="the token stops working after this long: a number and s, m, h, d or w (30d)",
    )
    when.add_argument(
        "--expires-at",
        metavar="TIME",
        help="the token stops working at this ISO 8601 time, with its time zone "
        "(2027-01-01T00:00Z); default: never",
    )
    s.set_defaults(func=cmd_token_create)
    s = token.add_parser(
        "list",
        help="list API tokens (prefix, user, last use, expiry; never the token)",
        description="List API tokens: id, user, role, client, name, prefix, last use and "
        "expiry. The tokens themselves are not kept, only their hashes.",
    )
    s.add_argument("--user", help="only this user's (name or id)")
    s.add_argument("--client", help="only this client's users' (name or id)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_token_list)
    s = token.add_parser(
        "revoke",
        help="revoke API tokens by id",
        description="Revoke API tokens (ids from gpshub token list): a running hub "
        "refuses them from its next check on.",
    )
    s.add_argument("ids", type=int, nargs="+", metavar="ID")
    s.set_defaults(func=cmd_token_revoke)

    conn = sub.add_parser(
        "connection", help="source connections (accounts on GPS platforms)"
    ).add_subparsers(dest="action", required=True)
    s = conn.add_parser(
        "add",
        help="test and save a connection",
        description="Test the credentials against the platform, then save the connection. Missing required fields are asked for (secrets without echo); KEY=@file reads a value from a file, KEY=@- from stdin.",
    )
    s.add_argument("--client", help="client name or id (optional when there is one)")
    s.add_argument("--kind", required=True, help="source kind, see: gpshub plugins")
    s.add_argument("--label", required=True)
    s.add_argument("--credential", "-c", action="append", default=[], metavar="KEY=VALUE")
    s.add_argument("--credentials-file", help="a JSON object of credentials")
    s.add_argument("--option", "-o", action="append", default=[], metavar="KEY=VALUE")
    s.add_argument("--no-test", action="store_true", help="save without testing")
    s.set_defaults(func=cmd_connection_add)
    s = conn.add_parser("list", help="list connections and their status")
    s.add_argument("--client")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_connection_list)
    s = conn.add_parser("test", help="test a saved connection")
    s.add_argument("id", type=int)
    s.set_defaults(func=cmd_connection_test)
    s = conn.add_parser("import", help="import the connection's remote devices as devices")
    s.add_argument("id", type=int)
    s.add_argument(
        "--upstream-id", action="append", default=[], help="import only these (repeatable)"
    )
    s.set_defaults(func=cmd_connection_import)

    hist = sub.add_parser("history", help="position history").add_subparsers(
        dest="action", required=True
    )
    s = hist.add_parser("export", help="export a device's positions as CSV or GeoJSON")
    s.add_argument("device", type=int, help="device id")
    s.add_argument("--client", help="optional: make sure the device is this client's")
    s.add_argument(
        "--from", dest="start", help="ISO 8601 start (inclusive), e.g. 2026-01-01T00:00Z"
    )
    s.add_argument("--to", dest="end", help="ISO 8601 end (exclusive)")
    s.add_argument("--format", choices=["csv", "geojson", "gpx"], default="csv")
    s.add_argument("--output", "-o", help="file to write (default: standard output)")
    s.set_defaults(func=cmd_history_export)

    sec = sub.add_parser("secrets", help="encryption keys").add_subparsers(
        dest="action", required=True
    )
    s = sec.add_parser(
        "rotate", help="re-encrypt every secret under the first key of GPSHUB_SECRET_KEY"
    )
    s.set_defaults(func=cmd_secrets_rotate)

    s = sub.add_parser(
        "backup",
        help="copy the SQLite database, also while the hub runs",
        description="Write a consistent copy of the SQLite database to FILE (mode 0600), "
        "also while the hub runs. Back up the key (DATA_DIR/secret.key or "
        "GPSHUB_SECRET_KEY) separately. PostgreSQL: use pg_dump (see the README).",
    )
    s.add_argument("file", help="the copy to write")
    s.add_argument("--force", action="store_true", help="replace FILE if it exists")
    s.set_defaults(func=cmd_backup)

    s = sub.add_parser(
        "new-plugin",
        help="write the skeleton of a source plugin, with its fake and tests",
        description="Write gpshub-NAME/: a networked source plugin for a made-up REST API, "
        "its fake server, the kit's contract test and an end-to-end test, which pass pytest "
        "as written. Its README.md says what to change.",
    )
    s.add_argument(
        "name",
        metavar="NAME",
        help="the plugin's name, the source's kind: a lowercase identifier (acme_fleet)",
    )
    s.add_argument(
        "--dir", default=".", metavar="PATH", help="where to write gpshub-NAME/ (default: here)"
    )
    s.set_defaults(func=cmd_new_plugin)

    from hub import cli_objects_parser  # device, geofence, rule, sink, alert (and devices)

    cli_objects_parser.register(sub)

    if plugin_manager is not None:
        # plugins add their commands; a command's func receives the parsed arguments and
        # opens the hub with hub_factory(args) when it needs one
        plugin_manager.hook.register_commands(subparsers=sub, hub_factory=_open_hub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    from hub.plugins import disabled_from_env, load_plugins

    try:
        pm, _ = load_plugins(disabled_from_env())
    except HubError as exc:
        _error(str(exc))
        return 2
    parser = build_parser(pm)
    args = parser.parse_args(argv)
    if args.command != "serve":
        from hub.logging_setup import install_redaction

        install_redaction()
    try:
        code = args.func(args)
    except (CliError, HubError, NotFound, Conflict, Invalid, ValueError, SourceError) as exc:
        _error(_message(exc))
        return 2
    except BrokenPipeError:  # the reader went away (| head): end quietly, as SIGPIPE would
        quiet_stdout()
        return 141
    except KeyboardInterrupt:
        return 130
    return code if isinstance(code, int) else 0


def _error(message: str) -> None:
    """One line on standard error: ``error: field: what is wrong``."""
    console.print(f"[red]error:[/] {escape(message)}", soft_wrap=True, highlight=False)


def _message(exc: BaseException) -> str:
    pydantic = sys.modules.get("pydantic")  # a ValidationError means it was imported
    if pydantic is not None and isinstance(exc, pydantic.ValidationError):
        from hub.web.errors import first_error

        field, message = first_error(exc)
        return f"{field}: {message}" if field else message
    if isinstance(exc, SourceError) and not str(exc):
        return type(exc).__name__
    return " ".join(str(exc).split())


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("gpshub")
    except PackageNotFoundError:
        return "unknown"


if __name__ == "__main__":
    sys.exit(main())
