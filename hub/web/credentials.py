"""Write-only credentials: what the API shows of them, how it validates and merges them.

A connection shows, per credential field, whether it is set and, for non-secret fields
only, its value.  A field the source kind does not declare, or any field of a kind whose
plugin is gone, counts as secret.  Messages about credentials are scrubbed of the values
of secret fields (``secret_values``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic_core import to_jsonable_python

from hub.errors import BadConfig
from hub.logging_setup import scrub
from hub.models import Connection
from hub.secrets import SecretError
from hub.source import Source, check_upstream_urls, dump_credentials, secret_names
from hub.web.errors import invalid
from hub.web.schemas import CredentialState

if TYPE_CHECKING:
    from hub.core import Hub

log = logging.getLogger("hub.web")

SourceClass = type[Source[Any, Any]]


def secret_fields(cls: SourceClass | None, creds: Mapping[str, Any]) -> set[str]:
    """The credential names to treat as secret: every name unless the kind says otherwise."""
    if cls is None:  # the plugin is gone: we cannot tell, so nothing is shown
        return set(creds)
    declared = set(cls.Credentials.model_fields)
    return secret_names(cls.Credentials) | (set(creds) - declared)


def secret_values(cls: SourceClass | None, creds: Mapping[str, Any]) -> list[Any]:
    """The values a message about these credentials must not show."""
    return [creds[k] for k in secret_fields(cls, creds) if k in creds]


def credential_states(cls: SourceClass | None, creds: Mapping[str, Any]) -> dict[str, Any]:
    names = list(cls.Credentials.model_fields) if cls is not None else []
    names += [k for k in creds if k not in names]
    secret = secret_fields(cls, creds)
    out = {}
    for name in names:
        value = creds.get(name)
        hidden = name in secret
        out[name] = CredentialState(
            set=value is not None and value != "",
            secret=hidden,
            value=None if hidden else value,
        )
    return out


def saved_credentials(hub: Hub, conn: Connection) -> dict[str, Any]:
    """Blocking.  Credentials that no key decrypts count as not set (to be typed again)."""
    try:
        return hub.store.connection_credentials(conn)
    except SecretError:
        log.warning("connection %s: its credentials cannot be decrypted with the keys", conn.id)
        return {}


def checked_credentials(cls: SourceClass, raw: Mapping[str, Any]) -> dict[str, Any]:
    """``raw`` validated by the source; the plain values to encrypt.  BadConfig → 422."""
    try:
        model = cls.parse_credentials(raw)
    except BadConfig as exc:
        raise invalid(exc.field, scrub(exc.reason, secret_values(cls, raw)) or "") from None
    return dict(to_jsonable_python(dump_credentials(model)))


def checked_options(cls: SourceClass, raw: Mapping[str, Any]) -> dict[str, Any]:
    try:
        cls.parse_options(raw)
    except BadConfig as exc:
        raise invalid(exc.field, exc.reason) from None
    return dict(raw)


def checked_urls(
    hub: Hub, cls: SourceClass, creds: Mapping[str, Any], options: Mapping[str, Any]
) -> None:
    """The upstream URLs of validated ``creds`` and ``options`` against the hub's outbound
    policy (a private address is refused unless the administrator allows it).  → 422."""
    try:
        check_upstream_urls(
            hub.outbound_policy, cls.parse_credentials(creds), cls.parse_options(options)
        )
    except BadConfig as exc:
        raise invalid(exc.field, exc.reason) from None


def _keeps_saved(value: Any) -> bool:
    """A credential value meaning "keep what is saved": the ``{"set": …}`` shape we show."""
    return isinstance(value, dict) and "set" in value and set(value) <= {"set", "secret", "value"}


def merged(saved: Mapping[str, Any], given: Mapping[str, Any] | None) -> dict[str, Any]:
    """``given`` over ``saved``: a field left out (or sent back as shown) keeps its value."""
    out = dict(saved)
    for key, value in (given or {}).items():
        if not _keeps_saved(value):
            out[key] = value
    return out
