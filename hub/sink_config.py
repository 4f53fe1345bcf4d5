"""Validating a sink's configuration: shared by the API and the command line.

Nothing here does I/O or touches the store.  Every refusal is a ``hub.store.Invalid``
naming the field (``kind``, ``format``, ``settings.url``, ``format_options.date_unit``,
``headers.Content-Type``), so the API answers 422 with that field and the command line
can say the same.

* ``resolve_kind`` checks the kind and the format and tells the sink's purpose (what the
  API needs to decide who may configure it before anything else is looked at);
* ``checked_sink`` does that, then validates the settings with the sink's ``Settings``
  (a ``url`` must pass the outbound guard's save-time check, ``hub.netguard.check_url``,
  and is kept normalised) and the format options with the format's ``Options``;
* ``checked_headers`` validates the custom request headers a sink sends (kept encrypted
  with its secrets).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from hub.formats import Format
from hub.netguard import OutboundPolicy, check_url
from hub.sink import Sink
from hub.store import Invalid

if TYPE_CHECKING:
    from hub.registry import Registry

__all__ = [
    "MAX_HEADERS",
    "MAX_HEADER_VALUE",
    "RESERVED_HEADERS",
    "CheckedSink",
    "ResolvedKind",
    "checked_format_options",
    "checked_headers",
    "checked_settings",
    "checked_sink",
    "resolve_kind",
    "usable_formats",
]

MAX_HEADERS = 20
MAX_HEADER_NAME = 256
MAX_HEADER_VALUE = 4096
RESERVED_HEADERS = frozenset(
    {
        # what the hub sets on every request itself
        "content-type",
        "content-length",
        "host",
        "transfer-encoding",
        "connection",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
        # connection-level (hop-by-hop) headers: they would change how the request is sent
        "keep-alive",
        "te",
        "trailer",
        "upgrade",
        "expect",
        "proxy-connection",
    }
)
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 7230 token
_VALUE = re.compile(r"[\t\x20-\x7e]*")  # visible ASCII, spaces and tabs: no CR, LF, NUL


@dataclass(frozen=True, slots=True)
class ResolvedKind:
    purpose: str
    sink_class: type[Sink]
    format_class: type[Format]


@dataclass(frozen=True, slots=True)
class CheckedSink:
    """A sink configuration that passed every check, ready to be stored."""

    purpose: str
    sink_class: type[Sink]
    format_class: type[Format]
    settings: dict[str, Any]
    format_options: dict[str, Any]

    @property
    def kind(self) -> str:
        return self.sink_class.kind

    @property
    def format(self) -> str:
        return self.format_class.kind


def usable_formats(registry: Registry, sink_class: type[Sink]) -> list[type[Format]]:
    """The registered formats a sink kind accepts, by name."""
    out = []
    for name in sorted(registry.formats):
        fmt = registry.formats[name]
        if sink_class.formats and name not in sink_class.formats:
            continue
        if sink_class.purpose is not None and fmt.purpose != sink_class.purpose:
            continue
        out.append(fmt)
    return out


def resolve_kind(registry: Registry, kind: str, format: str | None) -> ResolvedKind:
    """The sink class, the format class and the purpose of a (kind, format) pair."""
    sink_class = registry.sinks.get(kind)
    if sink_class is None:
        known = ", ".join(sorted(registry.sinks)) or "none installed"
        raise Invalid("kind", f"unknown sink kind {kind!r} (known: {known})")
    usable = ", ".join(f.kind for f in usable_formats(registry, sink_class)) or "none installed"
    name = format or sink_class.default_format
    if not name:
        raise Invalid("format", f"required for sink kind {kind!r} (one of: {usable})")
    format_class = registry.formats.get(name)
    if format_class is None:
        raise Invalid("format", f"unknown format {name!r} (usable with {kind!r}: {usable})")
    if sink_class.formats and name not in sink_class.formats:
        raise Invalid(
            "format", f"sink kind {kind!r} does not take format {name!r} (one of: {usable})"
        )
    if sink_class.purpose is not None and format_class.purpose != sink_class.purpose:
        raise Invalid(
            "format",
            f"format {name!r} encodes {format_class.purpose}, but sink kind {kind!r} delivers "
            f"{sink_class.purpose} (one of: {usable})",
        )
    return ResolvedKind(sink_class.purpose or format_class.purpose, sink_class, format_class)


def checked_sink(
    registry: Registry,
    policy: OutboundPolicy,
    *,
    kind: str,
    format: str | None,
    settings: Mapping[str, Any] | None,
    format_options: Mapping[str, Any] | None,
) -> CheckedSink:
    """Check a whole sink configuration (see the module's docstring)."""
    resolved = resolve_kind(registry, kind, format)
    return CheckedSink(
        purpose=resolved.purpose,
        sink_class=resolved.sink_class,
        format_class=resolved.format_class,
        settings=checked_settings(resolved.sink_class, policy, settings),
        format_options=checked_format_options(resolved.format_class, format_options),
    )


def checked_settings(
    sink_class: type[Sink], policy: OutboundPolicy, settings: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The settings as the sink's model reads them (the keys given, values coerced)."""
    model = _validated(sink_class.Settings, settings, "settings")
    out: dict[str, Any] = model.model_dump(mode="json", exclude_unset=True)
    url = getattr(model, "url", None)
    if url is not None:
        try:
            out["url"] = check_url(str(url), policy)
        except ValueError as exc:
            raise Invalid("settings.url", str(exc)) from None
    return out


def checked_format_options(
    format_class: type[Format], options: Mapping[str, Any] | None
) -> dict[str, Any]:
    model = _validated(format_class.Options, options, "format_options")
    return dict(model.model_dump(mode="json", exclude_unset=True))


def _validated(model: type[BaseModel], data: Mapping[str, Any] | None, prefix: str) -> BaseModel:
    if data is not None and not isinstance(data, Mapping):
        raise Invalid(prefix, "must be an object")
    try:
        return model.model_validate(dict(data or {}))
    except ValidationError as exc:
        field, message = _first_error(exc, prefix)
        raise Invalid(field, message) from None


def _first_error(exc: ValidationError, prefix: str) -> tuple[str, str]:
    """The dotted location (under ``prefix``) and message of the first problem; the
    message never quotes the input."""
    err = exc.errors(include_input=False, include_url=False)[0]
    loc = ".".join(str(p) for p in err["loc"])
    message = str(err["msg"])
    if err["type"] == "value_error":
        message = message.removeprefix("Value error, ")
    return (f"{prefix}.{loc}" if loc else prefix), message


def checked_headers(headers: Mapping[str, Any] | None) -> dict[str, str]:
    """Custom request headers, checked: RFC 7230 names, none the hub sets itself, values
    of visible ASCII without CR or LF (trimmed), at most ``MAX_HEADER_VALUE`` characters,
    at most ``MAX_HEADERS`` of them.  Messages never quote a value (it may be a secret)."""
    if headers is None:
        return {}
    if not isinstance(headers, Mapping):
        raise Invalid("headers", "must be an object of header names and values")
    if len(headers) > MAX_HEADERS:
        raise Invalid("headers", f"at most {MAX_HEADERS} headers, not {len(headers)}")
    out: dict[str, str] = {}
    seen: set[str] = set()
    for name, value in headers.items():
        field = f"headers.{name}"
        if not isinstance(name, str) or not _TOKEN.fullmatch(name):
            raise Invalid(
                field, "not a valid header name (letters, digits and !#$%&'*+-.^_`|~ only)"
            )
        if len(name) > MAX_HEADER_NAME:
            raise Invalid(field, f"a header name may have at most {MAX_HEADER_NAME} characters")
        lower = name.lower()
        if lower in RESERVED_HEADERS:
            raise Invalid(field, f"{name} is set by the hub itself and cannot be configured")
        if lower in seen:
            raise Invalid(field, "given twice (header names are case-insensitive)")
        seen.add(lower)
        if not isinstance(value, str):
            raise Invalid(field, "the value must be a string")
        if not _VALUE.fullmatch(value):
            raise Invalid(
                field,
                "the value may hold only visible ASCII characters, spaces and tabs "
                "(no line breaks or control characters)",
            )
        if len(value) > MAX_HEADER_VALUE:
            raise Invalid(field, f"the value may have at most {MAX_HEADER_VALUE} characters")
        out[name] = value.strip(" \t")
    return out
