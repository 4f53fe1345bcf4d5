"""Settings: defaults, then a TOML file, then ``GPSHUB_*`` environment variables, then
command-line flags (each overrides the one before)."""

from __future__ import annotations

import ipaddress
import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

ENV_PREFIX = "GPSHUB_"
CONFIG_FILE = "gpshub.toml"


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "gpshub"


POSITIVE = ("retention_every_s", "retention_batch_rows", "outbox_max_owed",
            "dead_letters_max_per_sink", "live_max_pending_bytes",
            "session_idle_s", "session_lifetime_s", "lease_s")  # fmt: skip


@dataclass(frozen=True)
class Settings:
    data_dir: Path = field(default_factory=default_data_dir)
    database_url: str = ""  # empty: SQLite file gpshub.db in data_dir
    host: str = "127.0.0.1"
    port: int = 8080
    allowed_origins: tuple[str, ...] = ()
    disable_plugins: tuple[str, ...] = ()
    log_level: str = "INFO"
    log_format: str = "text"  # "text" for people, "json": one object per line
    log_summary_s: float = 60.0  # seconds between the one-line summaries at INFO (0: none)
    metrics_listen: str = ""  # "host:port" serving /metrics without a token (e.g. 127.0.0.1:9464)
    sqlite_synchronous: str = "normal"  # FULL also survives power loss, at a cost
    ingest_linger_s: float = 0.05  # under load, a transaction begins this long after the last
    live_ping_interval: float = 20.0  # seconds between keep-alive pings on /api/live
    live_max_pending_bytes: int = 8 * 1024 * 1024  # backlog before a live socket is dropped
    live_tick_s: float = 0.05  # live messages go out together once per tick (0: at once)
    live_compression: str = "shared"  # permessage-deflate: shared, per-socket or off
    live_auth_timeout: float = 10.0  # seconds to send the token as the first message
    live_reauth_s: float = 60.0  # how often a live socket checks that its token still holds
    offline_timeout_s: int = 600  # a device silent this long is offline (per-device override)
    status_check_s: float = 30.0  # how often silent devices are looked for
    outbound_allow_networks: tuple[str, ...] = ()  # private networks outbound requests may reach
    sink_failing_after_s: int = 900  # a sink failing this long is marked "failing"
    delivery_poll_s: float = 1.0  # how often an idle sink looks for new outbox messages
    change_check_s: float = 1.0  # how often changes made by other processes are looked for
    change_fallback_s: float = 30.0  # the change log is read this often whatever happened
    # PostgreSQL, several processes (hub.cluster): a connection, sink or the maintenance
    # moves to another process this long after its holder died; renewed every third
    lease_s: float = 30.0
    # failed authentication: each client address may fail this many times a minute (a
    # token bucket: the burst, then one every 60/N s); 0 turns the throttle off
    auth_failures_per_minute: int = 10
    auth_tracked_addresses: int = 10_000  # addresses remembered at most (least recent go)
    trusted_proxies: tuple[str, ...] = ()  # proxies (CIDRs) whose X-Forwarded-For is believed
    # browser sessions (hub.web.sessions): signed out after this long without a request,
    # and this long after signing in whatever happens
    session_idle_s: float = 1800.0
    session_lifetime_s: float = 43200.0
    # housekeeping (hub.housekeeping): retention, caps and the SQLite WAL
    retention_every_s: float = 3600.0  # how often old rows are pruned and the caps applied
    retention_batch_rows: int = 1000  # rows deleted per transaction
    retention_pause_s: float = 0.2  # between two such transactions: ingest goes first
    outbox_max_owed: int = 2_000_000  # messages per client and purpose its sinks may owe
    dead_letters_max_per_sink: int = 10_000
    # the dashboard's map (GET /api/dashboard-settings); an empty URL: no tiles (offline)
    map_tile_url: str = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
    map_tile_attribution: str = (
        '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors'
    )
    map_tile_max_zoom: int = 19

    def __post_init__(self) -> None:
        for name in POSITIVE:
            if getattr(self, name) <= 0:
                raise ValueError(f"setting {name!r}: must be above 0")
        for name in ("retention_pause_s", "live_tick_s", "ingest_linger_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"setting {name!r}: must not be negative")

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'gpshub.db'}"

    def redacted_db_url(self) -> str:
        """The database URL without its password, for messages."""
        from sqlalchemy.engine import make_url

        return make_url(self.db_url).render_as_string(hide_password=True)

    @classmethod
    def load(
        cls,
        config_file: Path | None = None,
        environ: dict[str, str] | None = None,
        **overrides: Any,
    ) -> Settings:
        env = dict(os.environ if environ is None else environ)
        settings = cls()
        data_dir = overrides.get("data_dir") or env.get(ENV_PREFIX + "DATA_DIR")
        if data_dir:
            settings = replace(settings, data_dir=Path(data_dir))
        path = config_file or (
            Path(env[ENV_PREFIX + "CONFIG"]) if env.get(ENV_PREFIX + "CONFIG") else None
        )
        if path is None and (settings.data_dir / CONFIG_FILE).exists():
            path = settings.data_dir / CONFIG_FILE
        values: dict[str, Any] = {}
        if path is not None:
            try:
                values.update(tomllib.loads(Path(path).read_text()))
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise ValueError(f"config file {path}: {exc}") from None
        for f in fields(cls):
            key = ENV_PREFIX + f.name.upper()
            if key in env:
                values[f.name] = env[key]
        values.update({k: v for k, v in overrides.items() if v is not None})
        return settings._with(values)

    def _with(self, values: dict[str, Any]) -> Settings:
        known = {f.name: f for f in fields(self)}
        changes: dict[str, Any] = {}
        for name, value in values.items():
            if name not in known:
                raise ValueError(f"unknown setting {name!r} (known: {', '.join(sorted(known))})")
            changes[name] = _coerce(name, value, getattr(self, name))
            _check(name, changes[name])
        return replace(self, **changes)


_CHOICES = {
    "log_format": ("text", "json"),
    "sqlite_synchronous": ("off", "normal", "full", "extra"),
    "live_compression": ("shared", "per-socket", "off"),
}


def _check(name: str, value: Any) -> None:
    """Refuse values a setting cannot take, naming the setting."""
    if name == "trusted_proxies":
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(
                    f"setting {name!r}: {item!r} is not an IP address or network"
                ) from None
    elif name == "auth_failures_per_minute" and value < 0:
        raise ValueError(f"setting {name!r}: 0 (off) or more, not {value}")
    elif name == "auth_tracked_addresses" and value < 1:
        raise ValueError(f"setting {name!r}: 1 or more, not {value}")
    elif name == "map_tile_max_zoom" and not 0 <= value <= 30:
        raise ValueError(f"setting {name!r}: from 0 to 30, not {value}")
    elif (
        name == "map_tile_url"
        and value
        and (
            not value.startswith(("https://", "http://", "/"))
            or any(part not in value for part in ("{z}", "{x}", "{y}"))
        )
    ):
        raise ValueError(
            f"setting {name!r}: an http(s) URL or a path on this hub, with {{z}}, {{x}} and "
            f"{{y}}, or empty for no tiles"
        )


def _coerce(name: str, value: Any, current: Any) -> Any:
    if name in _CHOICES:
        text = str(value).strip().lower()
        if text not in _CHOICES[name]:
            raise ValueError(
                f"setting {name!r}: {value!r} is not one of {', '.join(_CHOICES[name])}"
            )
        return text
    try:
        if isinstance(current, Path):
            return Path(value).expanduser()
        if isinstance(current, bool):
            return value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes")
        if isinstance(current, int):
            return int(value)
        if isinstance(current, float):
            return float(value)
        if isinstance(current, tuple):
            items = value if isinstance(value, list | tuple) else str(value).split(",")
            return tuple(str(v).strip() for v in items if str(v).strip())
        return str(value)
    except (TypeError, ValueError):
        raise ValueError(f"setting {name!r}: {value!r} is not a valid value") from None
