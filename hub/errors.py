"""The error taxonomy shared by the core and every plugin.

Sources raise these from ``test_connection``, ``list_devices`` and ``poll``; the runner
turns each into a connection state and a retry policy.  Sinks raise the delivery errors.
"""

from __future__ import annotations


class HubError(Exception):
    """Base class of every error gpshub raises on purpose."""


class SourceError(HubError):
    """Base class of the errors a source may raise."""


class InvalidAuth(SourceError):
    """The upstream rejected the credentials.

    The connection is marked "needs re-auth" and is not polled again until its
    credentials change.  ``field``, when the source knows which credential was refused
    (e.g. ``"credentials.password"``), lets a form point at it.
    """

    def __init__(
        self, message: str = "the credentials were rejected", field: str | None = None
    ) -> None:
        super().__init__(message)
        self.field = field


class CannotConnect(SourceError):
    """The upstream could not be reached (DNS, refused, timeout, 5xx). Retried with backoff."""


class UpdateFailed(SourceError):
    """The upstream answered but the update could not be completed. Retried with backoff."""


class RateLimited(SourceError):
    """The upstream asked us to slow down; ``retry_after`` is in seconds."""

    def __init__(self, message: str = "rate limited", retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class BadConfig(SourceError):
    """The configuration is unusable: ``field`` names it, ``reason`` says why."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class NotSupported(SourceError):
    """The source does not offer this operation (for example browsing remote devices)."""


class DeliveryFailed(HubError):
    """A sink could not deliver now; it is retried (not before ``retry_after`` seconds,
    when given).  ``status`` is the HTTP status, if there was an answer."""

    def __init__(
        self,
        message: str = "delivery failed",
        retry_after: float | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.status = status


class DeliveryRejected(HubError):
    """The receiver refused the message for good; it goes to the dead letters with the
    status and an excerpt of the answer's body (give a good part of it: the hub masks
    the sink's secrets in it, then keeps the first 500 characters)."""

    def __init__(
        self, message: str = "rejected", status: int | None = None, excerpt: str = ""
    ) -> None:
        super().__init__(message)
        self.status = status
        self.excerpt = excerpt


class PluginError(HubError):
    """A plugin could not be loaded or registered; the message says which and how to fix it."""
