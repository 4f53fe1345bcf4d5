"""One locate round: ask devices for fresh locations and collect the pushed answers.

Reference §4.2–4.3: a locate request (``nbe_execute_action``) is answered with an empty
200; the location arrives later as an FCM push, over an MCS session logged in with the
``fcm_credentials`` of ``secrets.json``.  A round therefore

1. checks in (GCM) and opens an MCS session, sending the persistent ids of the pushes
   already handled so they are not delivered again (``persistent_ids``, saved by the caller
   after the round — also when it is cut short);
2. sends one request per due device, ``stagger_s`` apart, registering each request's uuid
   *before* sending (the push may come before the HTTP answer), until the sending window
   closes (``send_until``), a 429 stops the round's sending (``rate_limited``: Google's
   ``Retry-After``), or an error does;
3. meanwhile receives pushes: decrypts them (web push), decodes the ``DeviceUpdate``,
   matches it to its request by request uuid — and by canonic id, which must agree — and
   keeps updates for known devices also when unsolicited (a late answer to an earlier
   request, a background update);
4. stops when every request is answered, or ``push_wait_s`` after the last request, or at
   ``deadline`` (the poll's time budget), whichever comes first.

Nothing here decrypts locations: the caller does (``reports``), with the device entry from
the list when a push lacks the keys.  Failures of the push channel are notices, not
errors: the list part of the poll still counts, and unanswered requests are answered by
the next session (MCS keeps undelivered messages).  ``InvalidAuth`` and ``BadConfig`` from
a locate request end the round and are raised after the session is closed.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
import trio

from hub.clock import Clock
from hub.errors import BadConfig, InvalidAuth, RateLimited, SourceError

if TYPE_CHECKING:
    from gpshub_findhub.mcs import McsEndpoint, McsSession
    from gpshub_findhub.messages import DeviceUpdate
    from gpshub_findhub.nova import NovaClient
    from gpshub_findhub.secrets_json import FcmCredentials

LOGIN_REFUSED = (
    "fresh locations are off: Google refused the push login of secrets.json's"
    " fcm_credentials ({reason}); generate a new secrets.json"
)


@dataclass(slots=True)
class RoundResult:
    """What a round did and got."""

    updates: list[tuple[str, DeviceUpdate]] = field(default_factory=list)
    """(canonic id, update) of every push for a known device, in arrival order."""
    sent: dict[str, float] = field(default_factory=dict)
    """Canonic id → when its request went out (epoch s)."""
    answered: set[str] = field(default_factory=set)
    """Canonic ids whose request got its answer in this round."""
    rate_limited: float | None = None
    """Set when a 429 stopped the sending: the seconds Google asked to wait (0: unsaid)."""
    persistent_ids: list[str] | None = None
    """The session's persistent ids to save (``None``: no session was opened)."""
    notices: list[str] = field(default_factory=list)
    requests: int = 0


class LocateRound:
    """A round's state shared by its sending and receiving tasks."""

    def __init__(
        self,
        *,
        nova: NovaClient,
        fcm: FcmCredentials,
        known: set[str],
        client_uuid: str,
        clock: Clock,
        log: logging.Logger | logging.LoggerAdapter[logging.Logger],
        high_traffic_time: int | None = None,
    ) -> None:
        self.nova, self.fcm, self.known = nova, fcm, known
        self.client_uuid = client_uuid
        self.clock, self.log = clock, log
        self.high_traffic_time = high_traffic_time
        self.result = RoundResult()
        self._pending: dict[str, str] = {}  # request uuid -> canonic id
        self._sending = True
        self._closed = False
        self._settled = trio.Event()  # sending over and nothing pending, or channel gone
        self._fatal: SourceError | None = None

    async def run(
        self,
        http: httpx.AsyncClient,
        endpoint: McsEndpoint,
        due: Sequence[str],
        *,
        persistent_ids: Sequence[str],
        stagger_s: float,
        push_wait_s: float,
        send_until: float,
        deadline: float,
        connect: Any = None,
    ) -> RoundResult:
        """The round (see the module doc); ``send_until`` and ``deadline`` are trio times;
        ``connect`` opens the MCS connection (``mcs.guarded_connector``: the outbound guard)."""
        from gpshub_findhub.mcs import McsError, McsLoginError, checkin, open_mcs_session

        result = self.result
        with trio.move_on_at(deadline) as budget:
            try:
                await checkin(
                    http, endpoint.checkin_url, self.fcm.android_id, self.fcm.security_token
                )
                async with open_mcs_session(
                    endpoint,
                    android_id=self.fcm.android_id,
                    security_token=self.fcm.security_token,
                    persistent_ids=list(persistent_ids),
                    connect=connect,
                    logger=self.log if isinstance(self.log, logging.Logger) else None,
                ) as session:
                    try:
                        await self._exchange(session, due, stagger_s, push_wait_s, send_until)
                    finally:
                        result.persistent_ids = list(session.persistent_ids)
            # except*: the session's own tasks may raise inside an exception group
            except* McsLoginError as group:
                result.notices.append(LOGIN_REFUSED.format(reason=_first(group)))
            except* (McsError, OSError, httpx.HTTPError) as group:
                result.notices.append(
                    f"no fresh locations this poll: the push channel failed ({_first(group)})"
                )
        if budget.cancelled_caught:
            self.log.info("locate round cut at the poll's time budget")
            unanswered = len(self._pending)
            if unanswered:
                result.notices.append(
                    f"{unanswered} locate answer(s) still awaited when the poll's time ran out"
                )
        if self._fatal is not None:
            raise self._fatal
        return result

    async def _exchange(
        self,
        session: McsSession,
        due: Sequence[str],
        stagger_s: float,
        push_wait_s: float,
        send_until: float,
    ) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._receive, session)
            last_sent = await self._send(due, stagger_s, send_until)
            self._sending = False
            self._check_settled()
            with trio.move_on_at(last_sent + push_wait_s):
                await self._settled.wait()
            nursery.cancel_scope.cancel()

    async def _send(self, due: Sequence[str], stagger_s: float, send_until: float) -> float:
        """Send the requests; the trio time of the last one (now if none)."""
        result = self.result
        last = trio.current_time()
        for i, canonic_id in enumerate(due):
            if i and stagger_s > 0:
                await trio.sleep(stagger_s)
            if self._closed or trio.current_time() > send_until:
                break
            request_uuid = str(uuid.uuid4())
            self._pending[request_uuid] = canonic_id
            try:
                result.requests += 1
                await self.nova.locate(
                    canonic_id=canonic_id,
                    request_uuid=request_uuid,
                    client_uuid=self.client_uuid,
                    fcm_token=self.fcm.fcm_token,
                    high_traffic_time=self.high_traffic_time or int(self.clock.now().timestamp()),
                )
            except RateLimited as exc:
                self._pending.pop(request_uuid, None)
                result.rate_limited = exc.retry_after or 0.0
                break
            except (InvalidAuth, BadConfig) as exc:
                self._pending.pop(request_uuid, None)
                self._fatal = exc
                break
            except SourceError as exc:
                self._pending.pop(request_uuid, None)
                result.notices.append(f"locate requests stopped for this poll: {exc}")
                break
            result.sent[canonic_id] = self.clock.now().timestamp()
            last = trio.current_time()
        return last

    async def _receive(self, session: McsSession) -> None:
        from gpshub_findhub.mcs import McsClosed, McsError, decode_fcm_payload
        from gpshub_findhub.messages import decode_device_update
        from gpshub_findhub.wire import WireError

        while True:
            try:
                message = await session.receive()
            except (McsClosed, McsError, OSError) as exc:  # a stream error closes it too
                self._closed = True
                if self._sending or self._pending:
                    self.result.notices.append(
                        f"the push connection closed ({_short(exc)}): the answers still due"
                        " come with the next poll"
                    )
                self._settled.set()
                return
            try:
                payload = decode_fcm_payload(message, self.fcm.keys)
            except McsError as exc:
                self.log.warning("a push could not be read: %s", _short(exc))
                continue
            if payload is None:
                continue  # some other push
            try:
                update = decode_device_update(payload)
            except (WireError, ValueError) as exc:
                self.log.warning("a pushed device update does not decode: %s", _short(exc))
                continue
            self._take(update)
            self._check_settled()

    def _take(self, update: DeviceUpdate) -> None:
        """Match ``update`` to its request (uuid, then canonic id) and keep it if the
        device is one of ours."""
        device_id = update.device.canonic_id
        requested = self._pending.get(update.request_uuid)
        if requested is not None and device_id in ("", requested):
            del self._pending[update.request_uuid]
            self.result.answered.add(requested)
            device_id = requested
        elif requested is not None:
            self.log.info(
                "a push names request %s but another device than asked: taken as unsolicited",
                update.request_uuid,
            )
        if device_id in self.known:
            self.result.updates.append((device_id, update))
        else:
            self.log.debug("push for a device not imported: ignored")

    def _check_settled(self) -> None:
        if not self._sending and not self._pending:
            self._settled.set()


def _first(group: BaseExceptionGroup[BaseException]) -> str:
    """The first error of a (nested) exception group, shortened."""
    exc: BaseException = group
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return _short(exc)


def _short(exc: BaseException, limit: int = 160) -> str:
    text = str(exc) or type(exc).__name__
    return text[:limit]


def new_client_uuid() -> str:
    """The per-connection ``fmdClientUuid`` Google's app sends with every request."""
    return str(uuid.uuid4())
