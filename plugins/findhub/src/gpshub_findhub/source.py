"""``FindHubSource``: the trackers and phones of a Google Find Hub account.

The one credential is the account's ``secrets.json`` (``secrets_json``).  Every poll:

1. lists the devices (``nbe_list_devices``) and turns the location reports the list
   sometimes carries into fixes (a cheap extra: Google rarely puts any there);
2. with ``fcm_credentials``: a locate round (``locate``) — an MCS push session, one
   locate request per *due* device, the answers collected as they are pushed;
3. decrypts every report with the ``owner_key`` (``reports``) and keeps those not seen
   before (``tracking``): each becomes a fix with its own time, position, altitude and
   accuracy, and sensors ``report_status``, ``is_own_report`` and ``place_name``.

**Google's limits** (reference §6) are options: a device is asked at most every
``locate_interval_s`` (300 s), ``crowdsourced_cooldown_s`` (600 s) after an answer from the
crowd; requests go ``stagger_s`` (5 s) apart; a 429 stops the sending and pauses locate
requests for its ``Retry-After``.  The cadence (120 s while a device is recently active,
300 s when quiet: see ``tracking``) sets how often the list is read and due devices asked.

**Poll duration vs cadence.**  The runner gives a poll ``POLL_TIMEOUT`` (120 s) before it
calls it failed.  A poll keeps within ``POLL_BUDGET_S`` (100 s): requests are sent only
until ``POLL_BUDGET_S − push_wait_s`` after the poll began, and answers are awaited at
most ``push_wait_s`` after the last request and never past the budget.  With the
defaults one poll asks up to 1 + (100 − 60) / 5 = 9 devices; the others stay due and go
first at the next poll (the most overdue first), so a large account is served in turn.

State: the ADM token (``auth``), the push session's persistent ids, a 429 pause and the
client uuid live in the connection's state (encrypted at rest); each device's dedupe keys
and locate times in its cursor, saved with its fixes.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from gpshub_findhub.auth import DEFAULT_AUTH_URL, TokenManager
from gpshub_findhub.nova import DEFAULT_NOVA_URL, NovaClient, outbound_policy, vet_endpoint
from gpshub_findhub.secrets_json import FindHubSecrets, SecretsError, parse_secrets
from gpshub_findhub.tracking import Track, new_fixes
from hub.errors import BadConfig
from hub.rangepoll import HttpOptions
from hub.source import (
    Cadence,
    Cursor,
    DeviceRef,
    PollResult,
    RemoteDevice,
    Source,
    SourceContext,
    UpstreamUrl,
)

if TYPE_CHECKING:
    from gpshub_findhub.messages import DeviceMetadata
    from gpshub_findhub.reports import EikCache

DEFAULT_CHECKIN_URL = "https://android.clients.google.com/checkin"
DEFAULT_MCS_HOST = "mtalk.google.com"
DEFAULT_MCS_PORT = 5228
POLL_BUDGET_S = 100.0
"""How long a poll may take: below the runner's ``POLL_TIMEOUT`` (120 s), with room to
save what it got."""
ANDROID = 1  # DeviceMetadata.identifier_type of a phone (identifierInformation.type)

PIDS_KEY = "findhub.persistent_ids"
PAUSE_KEY = "findhub.locate_paused_until"
CLIENT_KEY = "findhub.client_uuid"
ANDROID_ID_KEY = "findhub.android_id"

LIST_ONLY = (
    "list only: secrets.json has no fcm_credentials, so no locate requests and no fresh locations"
)
NO_COORDINATES = (
    "no coordinates: secrets.json has no owner_key, so location reports cannot be decrypted"
)
LOCATE_OFF = "locate requests are off (option request_locations): no fresh locations"


class FindHubCredentials(BaseModel):
    """The account's ``secrets.json``, pasted whole."""

    model_config = ConfigDict(extra="forbid")

    secrets_json: SecretStr = Field(
        title="secrets.json",
        description="The whole content of GoogleFindMyTools' Auth/secrets.json. aas_token and"
        " username are required; fcm_credentials enables fresh locations, owner_key"
        " decryption. Use a secrets.json made for this hub only.",
    )


class FindHubOptions(HttpOptions):
    """Endpoints (Google's by default; any test server will do), Google's limits and
    ``timeout_s``, a Nova request's timeout."""

    model_config = ConfigDict(extra="forbid")

    auth_url: UpstreamUrl = Field(
        default=DEFAULT_AUTH_URL,
        title="Auth endpoint",
        description="Where access tokens are requested (gpsoauth's endpoint).",
    )
    nova_url: UpstreamUrl = Field(
        default=DEFAULT_NOVA_URL,
        title="Nova API",
        description="Base URL of the Find Hub API (nbe_list_devices, nbe_execute_action).",
    )
    checkin_url: UpstreamUrl = Field(
        default=DEFAULT_CHECKIN_URL,
        title="GCM check-in URL",
        description="Checked in before each push session.",
    )
    mcs_host: str = Field(
        default=DEFAULT_MCS_HOST,
        title="Push (MCS) host",
        description="Host of the FCM push connection.",
    )
    mcs_port: int = Field(default=DEFAULT_MCS_PORT, ge=1, le=65535, title="Push (MCS) port")
    mcs_tls: bool = Field(default=True, title="Push over TLS")
    mcs_ca_file: str | None = Field(
        default=None,
        title="Push CA file",
        description="A PEM file of CA certificates to trust for the push connection (a test"
        " server's); the system's by default.",
    )
    request_locations: bool = Field(
        default=True,
        title="Request fresh locations",
        description="Ask devices to locate themselves (needs fcm_credentials). Each request"
        " makes a tracker report over Bluetooth: it costs battery.",
    )
    locate_interval_s: float = Field(
        default=300.0,
        ge=60,
        le=86_400,
        title="Locate interval (s)",
        description="A device is asked for a fresh location at most this often.",
    )
    crowdsourced_cooldown_s: float = Field(
        default=600.0,
        ge=60,
        le=86_400,
        title="Cool-down after a crowdsourced answer (s)",
        description="After an answer from the crowd (other people's phones), wait this long"
        " before asking the device again.",
    )
    stagger_s: float = Field(
        default=5.0,
        ge=0,
        le=30,
        title="Seconds between locate requests",
        description="Requests of one poll are sent this far apart.",
    )
    push_wait_s: float = Field(
        default=60.0,
        ge=1,
        le=60,
        title="Wait for answers (s)",
        description="How long after its last request a poll waits for the pushed answers.",
    )

    @field_validator("mcs_host")
    @classmethod
    def _host(cls, value: str) -> str:
        from hub.netguard import ANY_ADDRESS, check_url

        host = value.strip().rstrip(".")
        if not host or any(c in host for c in "/:@?#[] "):
            raise ValueError("must be a host name or IPv4 address (no scheme, port or path)")
        check_url(f"https://{host}/", ANY_ADDRESS)  # syntax only; the guard checks at connect
        return host

    @field_validator("mcs_ca_file")
    @classmethod
    def _ca_file(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if not Path(value).is_file():
            raise ValueError("no such file")
        return value


class FindHubSource(Source[FindHubCredentials, FindHubOptions]):
    """Locations of the trackers and phones of a Google Find Hub account."""

    kind = "findhub"
    title = "Google Find Hub"
    description = (
        "The trackers and phones of a Google Find Hub (Find My Device) account, from the"
        " secrets.json of GoogleFindMyTools: each location report Google pushes, decrypted"
        " with the account's owner key. An unofficial API: Google may change it."
    )
    Credentials = FindHubCredentials
    Options = FindHubOptions
    cadence = Cadence(active=120.0, quiet=300.0, active_window=600.0)
    supports_browse = True

    def __init__(self, ctx: SourceContext[FindHubCredentials, FindHubOptions]) -> None:
        super().__init__(ctx)
        self.secrets: FindHubSecrets = parse_secrets(
            ctx.credentials.secrets_json.get_secret_value()
        )
        self._nova: NovaClient | None = None
        self._eik_cache: EikCache | None = None

    @classmethod
    def parse_credentials(cls, raw: Mapping[str, Any]) -> BaseModel:
        """The model, and ``secrets_json`` parsed: ``BadConfig`` names the key at fault
        (``credentials.secrets_json.fcm_credentials.gcm.android_id``)."""
        creds = super().parse_credentials(raw)
        assert isinstance(creds, FindHubCredentials)
        try:
            parse_secrets(creds.secrets_json.get_secret_value())
        except SecretsError as exc:
            raise BadConfig(f"credentials.{exc.path}", exc.reason) from None
        return creds

    # -- the clients -----------------------------------------------------------------------
    async def nova(self) -> NovaClient:
        if self._nova is None:
            ctx, options = self.ctx, self.ctx.options
            auth_host, auth_port = _host_port(options.auth_url)
            await vet_endpoint(ctx.http, auth_host, auth_port, "options.auth_url")
            tokens = TokenManager(
                auth_url=options.auth_url,
                username=self.secrets.username,
                aas_token=self.secrets.aas_token,
                android_id=await self._android_id(),
                state=ctx.state,
                clock=ctx.clock,
                log=ctx.log,
            )
            # ctx.http has the options' timeout_s (the runner gives it)
            self._nova = NovaClient(ctx.http, options.nova_url, tokens, log=ctx.log)
        return self._nova

    async def _android_id(self) -> str:
        """The android id the AAS token was minted with; without ``fcm_credentials`` (so
        none is known) a random one kept in state, as the Home Assistant port does."""
        if self.secrets.android_id is not None:
            return self.secrets.android_id
        saved = await self.ctx.state.get(ANDROID_ID_KEY)
        if isinstance(saved, str) and saved.isdigit():
            return saved
        made = str(secrets.randbits(63) | 1)
        await self.ctx.state.set(ANDROID_ID_KEY, made)
        return made

    # -- behaviour -------------------------------------------------------------------------
    async def test_connection(self) -> str:
        """An ADM token, the device list, and whether the owner key opens the trackers'
        keys: "Find Hub account a…@gmail.com: 4 devices (3 trackers, 1 phone); fresh
        locations: yes; decryption: yes"."""
        listed = await (await self.nova()).list_devices()
        phones = sum(1 for d in listed if d.identifier_type == ANDROID)
        trackers = len(listed) - phones
        devices = f"{_count(len(listed), 'device')} ({_count(trackers, 'tracker')}, {_count(phones, 'phone')})"
        if self.secrets.fcm is None:
            fresh = "no — secrets.json has no fcm_credentials (list only)"
        elif not self.ctx.options.request_locations:
            fresh = "no — the option request_locations is off"
        else:
            fresh = "yes"
        return (
            f"Find Hub account {mask_email(self.secrets.username)}: {devices};"
            f" fresh locations: {fresh}; decryption: {self._decryption(listed)}"
        )

    def _decryption(self, listed: Sequence[DeviceMetadata]) -> str:
        from gpshub_findhub.crypto import MCU_FAST_PAIR_MODEL_ID, EikError, decrypt_eik

        owner_key = self.secrets.owner_key
        if owner_key is None:
            return "no — secrets.json has no owner_key (no coordinates)"
        outdated = []
        for device in listed:
            if not device.encrypted_eik:
                continue
            try:
                decrypt_eik(
                    device.encrypted_eik,
                    owner_key,
                    bit_inverted=device.fast_pair_model_id == MCU_FAST_PAIR_MODEL_ID,
                )
            except EikError:
                outdated.append(repr(device.name or device.canonic_id))
        if outdated:
            return (
                f"the owner key does not open the keys of {', '.join(outdated)}: the owner key"
                " is outdated (generate a new secrets.json) or the tracker must be re-paired"
            )
        return "yes"

    async def list_devices(self) -> list[RemoteDevice]:
        return [remote_device(d) for d in await (await self.nova()).list_devices()]

    async def poll(self, devices: Sequence[DeviceRef], cursors: Mapping[str, Cursor]) -> PollResult:
        started = trio.current_time()
        options = self.ctx.options
        nova = await self.nova()
        tracks = {d.upstream_id: Track.from_cursor(cursors.get(d.upstream_id)) for d in devices}
        names = {d.upstream_id: d.name for d in devices}
        result = PollResult()
        listed = {d.canonic_id: d for d in await nova.list_devices()}
        result.devices = {cid: remote_device(d) for cid, d in listed.items() if cid in tracks}
        gone = [repr(names[cid] or cid) for cid in tracks if cid not in listed]
        if gone:
            result.notices.append(
                f"not in the Find Hub account (any more): {', '.join(sorted(gone))}"
            )
        digest = _Digest(self, tracks, names, result)
        for cid, device in listed.items():
            if cid in tracks:  # the key is checked even without reports: an outdated
                digest.take(cid, device)  # owner key shows at every poll
        if self.secrets.owner_key is None:
            result.notices.append(NO_COORDINATES)
        if self.secrets.fcm is None:
            result.notices.append(LIST_ONLY)
        elif not options.request_locations:
            result.notices.append(LOCATE_OFF)
        else:
            await self._locate(started, tracks, listed, digest)
        result.active = digest.moved
        for cid, track in tracks.items():
            if track.changed:
                result.cursors[cid] = track.cursor()
        return result

    async def _locate(
        self,
        started: float,
        tracks: Mapping[str, Track],
        listed: Mapping[str, DeviceMetadata],
        digest: _Digest,
    ) -> None:
        """A locate round for the due devices (module doc), its answers digested."""
        from gpshub_findhub.locate import LocateRound
        from gpshub_findhub.mcs import McsEndpoint, guarded_connector

        ctx, options, fcm = self.ctx, self.ctx.options, self.secrets.fcm
        assert fcm is not None
        now = ctx.clock.now().timestamp()
        paused = _float(await ctx.state.get(PAUSE_KEY))
        if paused is not None and now < paused:
            digest.result.notices.append(
                f"locate requests paused for {math.ceil(paused - now)} s more: Google asked"
                " to slow down (HTTP 429)"
            )
            return
        due = sorted(
            (cid for cid, t in tracks.items() if cid in listed and t.next_locate_at <= now),
            key=lambda cid: tracks[cid].next_locate_at,
        )
        if not due:
            return
        policy = outbound_policy(ctx.http)
        endpoint = McsEndpoint(
            checkin_url=options.checkin_url,
            host=options.mcs_host,
            port=options.mcs_port,
            tls=options.mcs_tls,
            ca_file=options.mcs_ca_file,
        )
        saved = await ctx.state.get(PIDS_KEY, [])
        persistent_ids = [p for p in saved if isinstance(p, str)] if isinstance(saved, list) else []
        round_ = LocateRound(
            nova=await self.nova(),
            fcm=fcm,
            known=set(tracks),
            client_uuid=await self._client_uuid(),
            clock=ctx.clock,
            log=ctx.log,
        )
        try:
            answer = await round_.run(
                ctx.http,
                endpoint,
                due,
                persistent_ids=persistent_ids,
                stagger_s=options.stagger_s,
                push_wait_s=options.push_wait_s,
                send_until=started + POLL_BUDGET_S - options.push_wait_s,
                deadline=started + POLL_BUDGET_S,
                connect=None if policy is None else guarded_connector(policy),
            )
        finally:  # also when the round raises: the pushes handled must not come again
            if round_.result.persistent_ids is not None:
                await ctx.state.set(PIDS_KEY, round_.result.persistent_ids)
        for cid, sent_at in answer.sent.items():
            tracks[cid].locate_sent(sent_at, options.locate_interval_s)
        for cid, update in answer.updates:
            device = _with_keys(update.device, listed.get(cid))
            newest = digest.take(cid, device)
            if cid in answer.sent and newest is not None and newest.status == "crowdsourced":
                tracks[cid].cool_down_until(answer.sent[cid] + options.crowdsourced_cooldown_s)
        if answer.rate_limited is not None:
            wait = answer.rate_limited or options.locate_interval_s
            await ctx.state.set(PAUSE_KEY, ctx.clock.now().timestamp() + wait)
            digest.result.notices.append(
                f"Google is rate limiting locate requests (HTTP 429): paused for {math.ceil(wait)} s"
            )
        digest.result.notices.extend(answer.notices)

    async def _client_uuid(self) -> str:
        from gpshub_findhub.locate import new_client_uuid

        saved = await self.ctx.state.get(CLIENT_KEY)
        if isinstance(saved, str) and saved:
            return saved
        made = new_client_uuid()
        await self.ctx.state.set(CLIENT_KEY, made)
        return made

    def eik_cache(self) -> EikCache:
        if self._eik_cache is None:
            from gpshub_findhub.reports import EikCache

            self._eik_cache = EikCache()
        return self._eik_cache


class _Digest:
    """Turns devices' reports into the poll's fixes: decrypted, deduplicated, notices for
    devices whose key the owner key does not open."""

    def __init__(
        self,
        source: FindHubSource,
        tracks: Mapping[str, Track],
        names: Mapping[str, str],
        result: PollResult,
    ) -> None:
        self.source, self.tracks, self.names, self.result = source, tracks, names, result
        self.moved = False
        self._told: set[str] = set()

    def take(self, cid: str, device: DeviceMetadata) -> Any:
        """Add the new fixes of ``device``'s reports; its newest report (or ``None``)."""
        from gpshub_findhub.reports import OwnerKeyOutdated, decrypt_device_reports

        owner_key = self.source.secrets.owner_key
        if owner_key is None or not (device.reports or device.encrypted_eik):
            return None
        name = self.names.get(cid) or device.name or cid
        try:
            reports = list(decrypt_device_reports(device, owner_key, self.source.eik_cache()))
        except OwnerKeyOutdated as exc:
            self._notice(cid, f"{name!r}: {exc}")
            return None
        except ValueError as exc:  # anything else undecryptable: this device only
            self._notice(cid, f"{name!r}: its location reports could not be decrypted ({exc})")
            return None
        skipped = getattr(reports, "skipped", ())
        if skipped:
            reasons = ", ".join(sorted({s.reason for s in skipped}))
            log = self.source.ctx.log
            level = logging.INFO if "undecryptable" in reasons else logging.DEBUG
            log.log(level, "%s: %d report(s) left out (%s)", name, len(skipped), reasons)
        if not reports:
            return None
        made = new_fixes(
            self.tracks[cid],
            reports,
            now=self.source.ctx.clock.now(),
            active_window_s=self.source.cadence.active_window,
        )
        for fix in made.fixes:
            self.result.add(cid, fix)
        self.moved = self.moved or made.moved
        return max(reports, key=lambda r: r.timestamp)

    def _notice(self, cid: str, text: str) -> None:
        if cid not in self._told:
            self._told.add(cid)
            self.result.notices.append(text)


def remote_device(device: DeviceMetadata) -> RemoteDevice:
    """A listed device as the hub browses it: canonic id, name, type/manufacturer/model."""
    from gpshub_findhub.messages import device_type_name

    if device.device_type is not None:
        kind = device_type_name(device.device_type)
    else:
        kind = "phone" if device.identifier_type == ANDROID else "unknown"
    extra = {"type": kind, "manufacturer": device.manufacturer, "model": device.model}
    name = device.name or f"{kind} {device.canonic_id[:8]}"
    return RemoteDevice(
        upstream_id=device.canonic_id, name=name, extra={k: v for k, v in extra.items() if v}
    )


def mask_email(email: str) -> str:
    """``alice@gmail.com`` → ``a…@gmail.com``."""
    local, _, domain = email.partition("@")
    return f"{local[:1]}…@{domain}" if domain else f"{email[:1]}…"


def _with_keys(device: DeviceMetadata, listed: DeviceMetadata | None) -> DeviceMetadata:
    """A pushed device entry completed with the list's key material when it lacks it."""
    if device.encrypted_eik or listed is None or not listed.encrypted_eik:
        return device
    return dataclasses.replace(
        device,
        encrypted_eik=listed.encrypted_eik,
        owner_key_version=listed.owner_key_version,
        fast_pair_model_id=device.fast_pair_model_id or listed.fast_pair_model_id,
    )


def _host_port(url: str) -> tuple[str, int]:
    import httpx

    parsed = httpx.URL(url)
    return parsed.host, parsed.port or (443 if parsed.scheme == "https" else 80)


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
