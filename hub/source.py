"""The contract a source plugin implements.

A source is one kind of upstream (Wialon, Traccar, the simulator, ...).  The hub makes one
instance per configured *connection* (an account on that upstream) and drives it:

* ``test_connection()`` before a connection is saved, and on demand;
* ``list_devices()`` to browse and import the account's devices (if ``supports_browse``);
* ``poll(devices, cursors)`` on the source's cadence, returning new fixes and cursors.

Credentials and options are pydantic models declared on the class; their fields drive the
"add connection" form.  Secret fields are typed ``SecretStr``: they are encrypted at rest,
never returned by the API and never logged.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import (
    TYPE_CHECKING,
    Annotated,
    Any,
    ClassVar,
    Generic,
    Protocol,
    TypeVar,
    get_args,
    get_origin,
)

from pydantic import AfterValidator, BaseModel, ConfigDict, SecretStr, ValidationError

from hub.errors import BadConfig, NotSupported, SourceError

if TYPE_CHECKING:
    from hub.clock import Clock
    from hub.fix import PositionFix
    from hub.netguard import OutboundPolicy
    from hub.upstream_http import UpstreamClient

GROUP_EXTERNAL = "External Integrations"


class _UpstreamUrlMark:
    """Marks a field as an upstream base URL (see ``UpstreamUrl``)."""

    def __repr__(self) -> str:
        return "UpstreamUrl"


_UPSTREAM_URL = _UpstreamUrlMark()


def _upstream_url(value: str) -> str:
    from hub.netguard import ANY_ADDRESS, check_url

    value = value.strip()
    url = check_url(value, ANY_ADDRESS).rstrip("/")
    if "?" in url:
        raise ValueError("a base URL must not have a query string ('?…')")
    return url


UpstreamUrl = Annotated[str, AfterValidator(_upstream_url), _UPSTREAM_URL]
"""The type of a credential or option holding an upstream's base URL (``server_url``).

Its syntax is checked (http or https, a host, no credentials, query or fragment) and a
trailing ``/`` removed; the hub also checks it against the outbound guard's policy when a
connection is saved and when its runner starts (``url_fields`` finds such fields)."""


def url_fields(model: type[BaseModel]) -> list[str]:
    """The names of ``model``'s ``UpstreamUrl`` fields."""
    return [
        name
        for name, info in model.model_fields.items()
        if any(m is _UPSTREAM_URL for m in info.metadata) or _marked(info.annotation)
    ]


def _marked(annotation: Any) -> bool:
    """Whether ``annotation`` is, or is a union with, an ``UpstreamUrl``."""
    if any(m is _UPSTREAM_URL for m in getattr(annotation, "__metadata__", ())):
        return True
    return any(_marked(arg) for arg in get_args(annotation))


class NoOptions(BaseModel):
    """The options model of a source that has none."""

    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True, slots=True)
class Cadence:
    """How often a source is polled, in seconds.

    ``quiet`` set makes the cadence adaptive: the runner polls every ``active`` seconds
    while any device of the connection moved or had its ignition on within
    ``active_window`` seconds, and every ``quiet`` seconds otherwise.  ``jitter`` is the
    fraction of the interval added or removed at random so connections do not poll in step.
    """

    active: float
    quiet: float | None = None
    active_window: float = 600.0
    jitter: float = 0.1

    @property
    def adaptive(self) -> bool:
        return self.quiet is not None

    def as_dict(self) -> dict[str, Any]:
        return {
            "active_seconds": self.active,
            "quiet_seconds": self.quiet,
            "active_window_seconds": self.active_window,
            "adaptive": self.adaptive,
        }


@dataclass(frozen=True, slots=True)
class DeviceRef:
    """A hub device as a source sees it: our id and the id upstream."""

    device_id: int
    upstream_id: str
    name: str = ""


@dataclass(frozen=True, slots=True)
class RemoteDevice:
    """A device found upstream while browsing an account."""

    upstream_id: str
    name: str
    imei: str | None = None
    license_plate: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Cursor:
    """Where polling of one device stands: the newest fix time seen and the plugin's state.

    ``state`` is opaque to the hub (JSON-serialisable).  A cursor is persisted in the same
    transaction as the fixes it covers, so a restart neither re-ingests nor skips.
    """

    last_fix_time: datetime | None = None
    state: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class PollResult:
    """What one poll produced: fixes and cursors, both keyed by upstream device id.

    A device missing from ``cursors`` gets its cursor's ``last_fix_time`` moved to its
    newest fix by the runner.  ``active`` overrides the runner's guess of whether the
    connection is active (for adaptive cadences).  ``devices`` carries the upstream's
    names, IMEIs and plates when the poll fetched them: the hub updates its devices where
    an upstream value changed since the last sync (so a local edit stands until then).
    ``notices`` are remarks for the connection's status, shown after a successful poll
    while the source keeps giving them (a setting it had to lower, say).
    """

    fixes: dict[str, list[PositionFix]] = field(default_factory=dict)
    cursors: dict[str, Cursor] = field(default_factory=dict)
    active: bool | None = None
    devices: dict[str, RemoteDevice] = field(default_factory=dict)
    notices: list[str] = field(default_factory=list)

    def add(self, upstream_id: str, fix: PositionFix) -> None:
        self.fixes.setdefault(upstream_id, []).append(fix)

    @property
    def fix_count(self) -> int:
        return sum(len(v) for v in self.fixes.values())


class StateStore(Protocol):
    """A small persistent key-value store private to one connection (encrypted at rest)."""

    async def get(self, key: str, default: Any = None) -> Any: ...

    async def set(self, key: str, value: Any) -> None: ...

    async def delete(self, key: str) -> None: ...


class MemoryStateStore:
    """A ``StateStore`` kept in memory: for tests and for unsaved connections."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}

    async def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    async def set(self, key: str, value: Any) -> None:
        self.data[key] = value

    async def delete(self, key: str) -> None:
        self.data.pop(key, None)


C = TypeVar("C", bound=BaseModel)
O = TypeVar("O", bound=BaseModel)  # noqa: E741


@dataclass
class SourceContext(Generic[C, O]):
    """Everything a source instance gets from the hub."""

    credentials: C
    options: O
    http: UpstreamClient
    """An ``httpx.AsyncClient`` with ``fetch`` and ``fetch_json`` (``hub.upstream_http``)."""
    log: logging.Logger | logging.LoggerAdapter[logging.Logger]
    state: StateStore
    clock: Clock
    connection_id: int | None = None
    label: str = ""


def connection_summary(result: object) -> str:
    """What ``test_connection()`` returned, checked: a summary to show; ``SourceError``
    when the plugin returned none (``None``, a blank text) or not a text."""
    if isinstance(result, str) and result.strip():
        return result
    if result is None or isinstance(result, str):
        raise SourceError("the plugin's test_connection returned nothing")
    raise SourceError(
        f"the plugin's test_connection returned {type(result).__name__}, not a summary text"
    )


class Source(Generic[C, O]):
    """Base class of every source plugin.  See the module docstring for the lifecycle."""

    kind: ClassVar[str]
    title: ClassVar[str]
    group: ClassVar[str] = GROUP_EXTERNAL
    description: ClassVar[str] = ""
    Credentials: ClassVar[type[BaseModel]]
    Options: ClassVar[type[BaseModel]] = NoOptions
    cadence: ClassVar[Cadence] = Cadence(active=30.0)
    supports_browse: ClassVar[bool] = False

    def __init__(self, ctx: SourceContext[C, O]) -> None:
        self.ctx = ctx

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """``class AcmeSource(Source[AcmeCredentials, AcmeOptions])`` sets ``Credentials``
        and ``Options`` from the brackets unless the class body sets them itself."""
        super().__init_subclass__(**kwargs)
        for base in getattr(cls, "__orig_bases__", ()):
            if get_origin(base) is Source:
                for name, arg in zip(("Credentials", "Options"), get_args(base), strict=False):
                    usable = isinstance(arg, type) and issubclass(arg, BaseModel)
                    if usable and arg is not BaseModel and name not in vars(cls):
                        setattr(cls, name, arg)

    # -- configuration ---------------------------------------------------------------
    @classmethod
    def parse_credentials(cls, raw: Mapping[str, Any]) -> BaseModel:
        """Validate raw credentials; raise ``BadConfig`` naming the first bad field."""
        return _parse_model(cls.Credentials, raw, "credentials")

    @classmethod
    def parse_options(cls, raw: Mapping[str, Any] | None) -> BaseModel:
        return _parse_model(cls.Options, raw or {}, "options")

    # -- behaviour ---------------------------------------------------------------------
    async def test_connection(self) -> str:
        """Check the credentials against the upstream; return a human-readable summary."""
        raise NotImplementedError

    async def list_devices(self) -> list[RemoteDevice]:
        """The devices visible to the account (only when ``supports_browse``)."""
        raise NotSupported(f"{self.title} has no remote device list to browse")

    async def poll(self, devices: Sequence[DeviceRef], cursors: Mapping[str, Cursor]) -> PollResult:
        """Fetch fixes newer than each device's cursor."""
        raise NotImplementedError

    async def aclose(self) -> None:
        """Release what the instance holds (sessions, sockets).  The hub closes ``ctx.http``."""


def _parse_model(model: type[BaseModel], raw: Mapping[str, Any], prefix: str) -> BaseModel:
    try:
        return model.model_validate(dict(raw))
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        msg = err["msg"]
        if err["type"] == "value_error":
            msg = msg.removeprefix("Value error, ")  # pydantic's prefix says nothing to a user
        raise BadConfig(f"{prefix}.{loc}" if loc else prefix, msg) from None


def check_upstream_urls(policy: OutboundPolicy, *models: BaseModel) -> None:
    """Raise ``BadConfig`` naming the first ``UpstreamUrl`` field of ``models`` (parsed
    credentials, then options) whose host the outbound policy refuses."""
    from hub.netguard import check_url

    for model, prefix in zip(models, ("credentials", "options"), strict=False):
        for name in url_fields(type(model)):
            value = getattr(model, name)
            if not value:
                continue
            try:
                check_url(str(value), policy)
            except ValueError as exc:
                raise BadConfig(f"{prefix}.{name}", str(exc)) from None


@dataclass(frozen=True, slots=True)
class CredentialField:
    """One field of a credentials or options model, as a form needs it."""

    name: str
    label: str
    required: bool
    secret: bool
    description: str
    default: Any
    type: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": self.label,
            "required": self.required,
            "secret": self.secret,
            "description": self.description,
            "default": self.default,
            "type": self.type,
        }


def describe_fields(model: type[BaseModel]) -> list[CredentialField]:
    """The form fields of a pydantic model (credentials or options)."""
    schema = model.model_json_schema()
    props = schema.get("properties", {})
    out = []
    for name, info in model.model_fields.items():
        prop = props.get(name, {})
        secret = secret_field(model, name)
        default = (
            None if info.is_required() or secret else info.get_default(call_default_factory=True)
        )
        out.append(
            CredentialField(
                name=name,
                label=info.title or name.replace("_", " ").capitalize(),
                required=info.is_required(),
                secret=secret,
                description=info.description or "",
                default=default,
                type=_json_type(prop),
            )
        )
    return out


def secret_field(model: type[BaseModel], name: str) -> bool:
    annotation = model.model_fields[name].annotation
    return annotation is SecretStr or SecretStr in getattr(annotation, "__args__", ())


def secret_names(model: type[BaseModel]) -> set[str]:
    return {name for name in model.model_fields if secret_field(model, name)}


def _json_type(prop: Mapping[str, Any]) -> str:
    if "type" in prop:
        return str(prop["type"])
    for option in prop.get("anyOf", []):
        if option.get("type") not in (None, "null"):
            return str(option["type"])
    return "string"


def secret_strings(creds: BaseModel) -> list[str]:
    """The values of the secret fields of ``creds``: what no message may show."""
    return [v.get_secret_value() for v in vars(creds).values() if isinstance(v, SecretStr)]


def dump_credentials(creds: BaseModel) -> dict[str, Any]:
    """Credentials as plain JSON values, secrets revealed: only for encryption at rest."""
    out: dict[str, Any] = {}
    for name in type(creds).model_fields:
        value = getattr(creds, name)
        out[name] = value.get_secret_value() if isinstance(value, SecretStr) else value
    return out
