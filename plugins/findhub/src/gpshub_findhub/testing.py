"""``FakeFindHub``: Google's Find Hub endpoints, faked on loopback, for tests and benchmarks.

A ``hub.fake_upstream.FakeUpstream``: its app answers what the plugin calls over HTTP,
the way reference §3–§4 says Google does:

* ``POST /auth`` — gpsoauth's form: checks the account, AAS token, android id, service,
  app and client signature, and answers ``key=value`` lines (``Auth``, ``Expiry``,
  ``ExpiresInDurationSec``), or ``403 Error=BadAuthentication`` (``auth_error``);
* ``POST /nova/nbe_list_devices`` and ``POST /nova/nbe_execute_action`` — check the headers
  of Google's app (Bearer token issued here and not expired, ``User-Agent: fmd/…``, the
  form content type, ``Accept-Language``) and parse the protobuf request; the list answers a
  ``DevicesList`` built with ``messages.encode_devices_list``; a locate answers an empty 200
  and pushes a ``DeviceUpdate`` (the device with its newest reports, the request's uuid) to
  the fake MCS, ``answer_delay_s`` later;
and, while the app is served (its lifespan), ``fake_mcs.FakeMcs`` is the push side: the GCM
check-in and the MCS server, which delivers the pushes encrypted to the test web-push keys.

The world: ``add_tracker`` / ``add_phone`` make devices whose identity keys (EIK) are
encrypted with the test owner key as Google stores them (GCM or CBC form, bit-inverted for
DIY MCU trackers); ``report`` gives a device a location report — own (AES-GCM), from the
crowd (secp160r1 ECIES, AES-EAX) or a place name only — which its next answers carry.
``secrets_json()`` is a matching ``secrets.json`` (test P-256 web-push keys).

Faults are the base's switches (``fail``, ``rate_limit``, ``malformed``, ``hang``, their
``path`` a Nova scope such as ``nbe_execute_action`` or ``/auth``), ``platform_error(status=)``
(Google's own HTML error page), ``expire_sessions()`` (every token issued so far is refused
with 401); the account's own: ``auth_error`` ("BadAuthentication", "NeedsBrowser": the AAS
token is refused), ``answer_locates`` (False: requests accepted, never answered),
``embed_reports`` (the list carries each device's reports).  Records: the base's ``calls``
and ``requests`` (per Nova scope, and ``/auth``), ``auth_forms``, ``locates`` (parsed
requests), ``tokens_issued``.

On trio's mock clock blocking calls run on the trio thread, where a real token request
could never reach the fake served by that same thread: replace ``auth.post_auth_form`` by
``post_form``, the fake's in-process answer (counted under ``/auth`` too)::

    fake = FakeFindHub(now=lambda: gpshub_wall.now().timestamp())
    monkeypatch.setattr(auth, "post_auth_form", fake.post_form)
    tag = fake.add_tracker("Keys")
    fake.report(tag, 52.52, 13.405, alt=34, accuracy=12)
    url = await gpshub_serve(fake)                    # the HTTP app and the MCS server
    credentials, options = fake.credentials(), fake.options(url)

The running hub never imports this module.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import time
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import trio
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from gpshub_findhub.auth import ADM_APP, ADM_SERVICE, CLIENT_SIG
from gpshub_findhub.nova import CONTENT_TYPE, EXECUTE_ACTION, LIST_DEVICES
from gpshub_findhub.wire import Fields, WireError
from hub.fake_upstream import FakeCall, FakeUpstream

TEST_OWNER_KEY = bytes(range(100, 132))
"""The owner key of the reference's vectors (§8): bytes 100…131."""
TEST_USERNAME = "alice@gmail.com"
TEST_AAS_TOKEN = "aas_et/FAKE-master-token-for-tests"  # noqa: S105 - a fake's
TEST_ANDROID_ID = 3_960_231_234_567_890_123
TEST_SECURITY_TOKEN = 8_765_432_109_876_543_210
TEST_FCM_TOKEN = "fake-fcm-registration-token"  # noqa: S105 - a fake's
STATUS = {"semantic": 0, "last_known": 1, "crowdsourced": 2, "aggregated": 3}
ANDROID, SPOT = 1, 2
MCU_MODEL_ID = "003200"


def secrets_document(
    *,
    username: str = TEST_USERNAME,
    aas_token: str = TEST_AAS_TOKEN,
    fcm: bool = True,
    owner_key: bytes | None = TEST_OWNER_KEY,
    android_id: int = TEST_ANDROID_ID,
) -> dict[str, Any]:
    """A ``secrets.json`` as GoogleFindMyTools writes it (as a dict), for the test keys."""
    from gpshub_findhub.fake_mcs import sample_fcm_keys_json

    doc: dict[str, Any] = {"aas_token": aas_token, "username": username}
    if fcm:
        doc["fcm_credentials"] = {
            "keys": sample_fcm_keys_json(),  # fake_mcs's test receiver (the §8 vector's)
            "gcm": {
                "token": "fake-gcm-token",
                "app_id": "wp:com.google.android.apps.adm#00000000-0000-4000-8000-000000000000",
                "android_id": str(android_id),
                "security_token": str(TEST_SECURITY_TOKEN),
            },
            "fcm": {
                "registration": {
                    "name": f"projects/google.com:api-project-289722593072/registrations/{TEST_FCM_TOKEN}",
                    "token": TEST_FCM_TOKEN,
                },
                "installation": {"token": "fake-installation", "expires_in": 604800},
            },
            "config": {"bundle_id": "com.google.android.apps.adm"},
        }
    if owner_key is not None:
        doc["owner_key"] = owner_key.hex()
    doc["shared_key"] = "00" * 32  # present in real files; the plugin ignores it
    return doc


@dataclass
class FakeDevice:
    """A device of the fake account; ``reports`` are its location reports, oldest first."""

    canonic_id: str
    name: str
    identifier_type: int
    device_type: int | None
    manufacturer: str
    model: str
    fast_pair_model_id: str
    pair_date: int
    eik: bytes
    encrypted_eik: bytes
    owner_key_version: int = 1
    reports: list[Any] = field(default_factory=list)
    answers: int = 0

    def metadata(self, *, listed: bool, latest: int = 3) -> Any:
        """The device's ``DeviceMetadata``: phones' list entries carry no keys (as Google's)."""
        from gpshub_findhub.messages import DeviceMetadata

        keyless = listed and self.identifier_type == ANDROID
        return DeviceMetadata(
            canonic_id=self.canonic_id,
            identifier_type=self.identifier_type,
            name=self.name,
            device_type=self.device_type,
            manufacturer=self.manufacturer,
            model=self.model,
            fast_pair_model_id=self.fast_pair_model_id,
            pair_date=self.pair_date,
            encrypted_eik=b"" if keyless else self.encrypted_eik,
            owner_key_version=None if keyless else self.owner_key_version,
            shared_with=(),
            image_url="",
            reports=tuple(self.reports[-latest:]) if latest else (),
        )


@dataclass(frozen=True)
class LocateCall:
    """A parsed ``nbe_execute_action`` request."""

    canonic_id: str
    request_uuid: str
    client_uuid: str
    fcm_token: str
    at: float


def parse_locate_request(body: bytes) -> LocateCall:
    """The fields of an ``ExecuteActionRequest`` (reference §4.2) a fake needs."""
    request = Fields(body)
    scope = request.message(1)
    action = request.message(2)
    meta = request.message(3)
    if scope is None or action is None or meta is None or 30 not in action:
        raise WireError("not a locate request")
    device = scope.message(3)
    canonic = device.message(1) if device is not None else None
    gcm = meta.message(4)
    if canonic is None or gcm is None:
        raise WireError("locate request without device or FCM token")
    return LocateCall(
        canonic_id=canonic.str(1),
        request_uuid=meta.str(2),
        client_uuid=meta.str(3),
        fcm_token=gcm.str(1),
        at=0.0,
    )


class FakeFindHub(FakeUpstream):
    """Google's auth, Nova and check-in endpoints and an MCS server for one account."""

    name = "findhub"

    def __init__(
        self,
        *,
        now: Callable[[], float] = time.time,
        username: str = TEST_USERNAME,
        aas_token: str = TEST_AAS_TOKEN,
        android_id: int = TEST_ANDROID_ID,
        owner_key: bytes = TEST_OWNER_KEY,
        token_lifetime_s: float = 3600.0,
        mcs_tls: bool = False,
    ) -> None:
        super().__init__(now=now)
        self.username, self.aas_token, self.android_id = username, aas_token, android_id
        self.owner_key = owner_key
        self.token_lifetime_s = token_lifetime_s
        self.devices: dict[str, FakeDevice] = {}
        self.mcs = self._new_mcs(mcs_tls)
        # the account's switches
        self.auth_error: str | None = None
        self.answer_locates = True
        self.answer_delay_s = 0.0
        self.embed_reports = False
        # records
        self.auth_forms: list[dict[str, str]] = []
        self.locates: list[LocateCall] = []
        self.tokens: dict[str, float] = {}  # token -> expires at
        self.tokens_issued = 0
        self.pushed = 0
        self._ids = itertools.count(1)
        self.url = ""
        """Where ``start`` served the fake (``options`` points there by default)."""

    # -- serving ---------------------------------------------------------------------------
    def routes(self) -> list[BaseRoute]:
        return [
            Route("/auth", self._auth, methods=["POST"]),
            Route(f"/nova/{LIST_DEVICES}", self._list, methods=["POST"]),
            Route(f"/nova/{EXECUTE_ACTION}", self._execute, methods=["POST"]),
        ]

    @property
    def app(self) -> Starlette:
        """The base's app; serving it (its lifespan) serves the MCS server too."""
        app = super().app
        app.router.lifespan_context = self._serve_push
        return app

    @asynccontextmanager
    async def _serve_push(self, app: Any) -> AsyncIterator[None]:
        async with trio.open_nursery() as nursery:
            await nursery.start(self.mcs.serve)
            yield
            nursery.cancel_scope.cancel()

    async def start(self, nursery: trio.Nursery) -> str:
        """Serve the fake (the MCS server with it) on loopback in ``nursery``, outside a
        test's fixtures (the benchmark); its base URL."""
        from hub.testing import serve_app

        self.url = await nursery.start(serve_app, self.app)
        return self.url

    def request_name(self, call: FakeCall) -> str:
        """A Nova call is counted under its scope (``nbe_list_devices``)."""
        return call.path.removeprefix("/nova/")

    def credentials(self, **secrets: Any) -> dict[str, Any]:
        """A connection's credentials: ``secrets.json`` (see ``secrets_json``)."""
        return {"secrets_json": self.secrets_json(**secrets)}

    def secrets_json(self, **overrides: Any) -> str:
        """The account's ``secrets.json`` text; ``fcm=False`` / ``owner_key=None`` leave
        those keys out."""
        params: dict[str, Any] = {
            "username": self.username,
            "aas_token": self.aas_token,
            "android_id": self.android_id,
            "owner_key": self.owner_key,
        }
        params.update(overrides)
        return json.dumps(secrets_document(**params), indent=2)

    def options(self, url: str | None = None, **extra: Any) -> dict[str, Any]:
        """Options pointing every endpoint at this fake, served at ``url`` (by default
        where ``start`` served it)."""
        base = (url or self.url).rstrip("/")
        mcs = self.mcs
        options = {
            "auth_url": f"{base}/auth",
            "nova_url": f"{base}/nova",
            "checkin_url": mcs.checkin_url,
            "mcs_host": "127.0.0.1",
            "mcs_port": mcs.port,
            "mcs_tls": mcs.tls,
        }
        if mcs.ca_file:
            options["mcs_ca_file"] = mcs.ca_file
        return {**options, **extra}

    # -- the world -------------------------------------------------------------------------
    def add_tracker(
        self,
        name: str,
        *,
        device_type: int = 3,
        manufacturer: str = "Acme",
        model: str = "T1",
        mcu: bool = False,
        form: str = "gcm",
        canonic_id: str | None = None,
    ) -> str:
        """A tracker with its EIK encrypted under the owner key; its canonic id."""
        from gpshub_findhub.crypto import encrypt_eik

        n = next(self._ids)
        cid = canonic_id or str(uuid.UUID(int=0x677DB4D7_0000_434B_AB3F_000000000000 + n))
        eik = hashlib.sha256(f"eik {cid}".encode()).digest()
        blob = encrypt_eik(
            eik,
            self.owner_key,
            form=form,
            iv=hashlib.sha256(cid.encode()).digest()[: 16 if form == "cbc" else 12],
        )
        if mcu:
            blob = bytes(b ^ 0xFF for b in blob)
        self.devices[cid] = FakeDevice(
            canonic_id=cid,
            name=name,
            identifier_type=SPOT,
            device_type=device_type,
            manufacturer=manufacturer,
            model=model,
            fast_pair_model_id=MCU_MODEL_ID if mcu else "abc123",
            pair_date=1_700_000_000,
            eik=eik,
            encrypted_eik=blob,
        )
        return cid

    def add_phone(self, name: str, *, manufacturer: str = "Google", model: str = "Pixel 8") -> str:
        """A phone: listed without keys, its key material only in its locate answers."""
        cid = self.add_tracker(name, device_type=None, manufacturer=manufacturer, model=model)  # type: ignore[arg-type]
        self.devices[cid].identifier_type = ANDROID
        return cid

    def report(
        self,
        cid: str,
        lat: float,
        lon: float,
        *,
        alt: int = 0,
        accuracy: float = 10.0,
        t: float | None = None,
        status: str = "own",
        place_name: str = "",
    ) -> Any:
        """Give ``cid`` a location report taken at ``t`` (default: now): ``status`` "own"
        (encrypted for the owner's devices), "crowdsourced" / "aggregated" (a finder's,
        secp160r1 + EAX), "last_known"; "semantic" carries only ``place_name``."""
        from gpshub_findhub.crypto import encode_location, encrypt_finder_report, encrypt_own_report
        from gpshub_findhub.messages import RawReport

        device = self.devices[cid]
        when = int(self.now() if t is None else t)
        seed = hashlib.sha256(f"{cid} {when} {lat} {lon}".encode()).digest()
        offset = 0 if device.fast_pair_model_id == MCU_MODEL_ID else max(when - device.pair_date, 0)
        public_key_random, blob, code = b"", b"", STATUS.get(status, 1)
        if status == "semantic":
            pass
        elif status in ("own", "last_known"):
            blob = encrypt_own_report(device.eik, encode_location(lat, lon, alt), seed[:12])
            code = STATUS["last_known"]
        else:
            blob, public_key_random = encrypt_finder_report(
                device.eik, offset, encode_location(lat, lon, alt), seed
            )
        raw = RawReport(
            timestamp=when,
            status=code,
            place_name=place_name,
            public_key_random=public_key_random,
            encrypted_location=blob,
            is_own_report=status in ("own", "last_known"),
            device_time_offset=offset,
            accuracy=accuracy,
        )
        device.reports.append(raw)
        return raw

    def push_update(self, cid: str, request_uuid: str = "") -> bytes:
        """Push ``cid``'s current state as a ``DeviceUpdate`` (unsolicited when
        ``request_uuid`` is empty); the pushed payload."""
        from gpshub_findhub.messages import DeviceUpdate, encode_device_update

        device = self.devices[cid]
        device.answers += 1
        payload = encode_device_update(
            DeviceUpdate(
                request_uuid=request_uuid,
                response_time=int(self.now()),
                device=device.metadata(listed=False),
            )
        )
        self.mcs.push(payload)
        self.pushed += 1
        return payload

    # -- the base's switches, Google's way ------------------------------------------------
    def expire_sessions(self) -> None:
        """Every token issued so far is refused from now on (HTTP 401)."""
        self.tokens.clear()

    def platform_response(
        self, call: FakeCall, *, status: int = 500, title: str = "Server Error", **_: Any
    ) -> Response:
        """Google's own error page ("That’s an error."), with ``status``."""
        return _page(status, title)

    # -- handlers --------------------------------------------------------------------------
    async def _auth(self, request: Request) -> Response:
        body = (await request.body()).decode("utf-8", "replace")
        form = dict(urllib.parse.parse_qsl(body, keep_blank_values=True))
        status, fields = self.answer_auth(form, request.headers.get("user-agent", ""))
        return _lines(status, fields)

    def answer_auth(self, form: dict[str, str], user_agent: str) -> tuple[int, dict[str, str]]:
        """The auth endpoint's answer to ``form``: its status and ``key=value`` fields."""
        self.auth_forms.append(dict(form))
        expected = {
            "accountType": "HOSTED_OR_GOOGLE",
            "Email": self.username,
            "EncryptedPasswd": self.aas_token,
            "service": ADM_SERVICE,
            "app": ADM_APP,
            "client_sig": CLIENT_SIG,
        }
        if (
            self.auth_error
            or any(form.get(k) != v for k, v in expected.items())
            or not form.get("androidId", "").isdigit()
            or user_agent != "GoogleAuth/1.4"
        ):
            return 403, {"Error": self.auth_error or "BadAuthentication"}
        token = f"ya29.fake-{next(self._ids)}"
        expires = self.now() + self.token_lifetime_s
        self.tokens[token] = expires
        self.tokens_issued += 1
        return 200, {
            "Auth": token,
            "Expiry": str(int(expires)),
            "ExpiresInDurationSec": str(int(self.token_lifetime_s) - 1),
            "issueAdvice": "auto",
            "grantedScopes": ADM_SERVICE.removeprefix("oauth2:"),
        }

    def post_form(self, url: str, form: dict[str, Any]) -> Any:
        """A stand-in for ``auth.post_auth_form`` answering in-process (no socket): for
        tests on trio's mock clock, where blocking calls run on the trio thread and a real
        POST to this fake (served by the same thread) could never be answered.  Called
        from a worker thread (the real clock), it answers on the trio thread, where the
        fake's clock can be read."""
        from gpshub_findhub.auth import USER_AGENT, AuthAnswer

        def answer() -> AuthAnswer:
            self.requests["/auth"] += 1
            status, fields = self.answer_auth({k: str(v) for k, v in form.items()}, USER_AGENT)
            return AuthAnswer(status, fields)

        try:
            trio.lowlevel.current_trio_token()
        except RuntimeError:  # a worker thread
            return trio.from_thread.run_sync(answer)
        return answer()

    def _check(self, request: Request) -> Response | None:
        """The header and token checks: an error response, or None."""
        headers = request.headers
        if (
            headers.get("content-type") != CONTENT_TYPE
            or not headers.get("user-agent", "").startswith("fmd/")
            or headers.get("accept-language") != "en-US"
        ):
            return _page(400, "Bad Request: not Google's Find Hub app")
        auth = headers.get("authorization", "")
        token = auth.removeprefix("Bearer ")
        if not auth.startswith("Bearer ") or self.tokens.get(token, 0.0) <= self.now():
            return _page(401, "Unauthorized")
        return None

    async def _list(self, request: Request) -> Response:
        from gpshub_findhub.messages import encode_devices_list

        refused = self._check(request)
        if refused is not None:
            return refused
        try:
            payload = Fields(await request.body()).message(1)
            if payload is None or payload.int(1) != SPOT or not payload.str(3):
                raise WireError("not a DevicesListRequest")
        except WireError:
            return _page(400, "Bad Request")
        latest = 3 if self.embed_reports else 0
        devices = [d.metadata(listed=True, latest=latest) for d in self.devices.values()]
        return Response(encode_devices_list(devices), media_type="application/x-protobuf")

    async def _execute(self, request: Request) -> Response:
        refused = self._check(request)
        if refused is not None:
            return refused
        try:
            call = parse_locate_request(await request.body())
        except WireError:
            return _page(400, "Bad Request")
        call = LocateCall(**{**call.__dict__, "at": self.now()})
        self.locates.append(call)
        if call.canonic_id not in self.devices or not self.answer_locates:
            return Response(b"", media_type="application/x-protobuf")
        task = BackgroundTask(self._answer, call.canonic_id, call.request_uuid)
        return Response(b"", media_type="application/x-protobuf", background=task)

    async def _answer(self, cid: str, request_uuid: str) -> None:
        if self.answer_delay_s > 0:
            await trio.sleep(self.answer_delay_s)
        self.push_update(cid, request_uuid)

    # -- the push side -----------------------------------------------------------------------
    def _new_mcs(self, tls: bool) -> Any:
        from gpshub_findhub.fake_mcs import FakeMcs, sample_fcm_keys

        return FakeMcs(
            android_id=self.android_id,
            security_token=TEST_SECURITY_TOKEN,
            keys=sample_fcm_keys(),
            tls=tls,
        )


def _lines(status: int, fields: dict[str, str]) -> Response:
    body = "".join(f"{k}={v}\n" for k, v in fields.items())
    return Response(body, status_code=status, media_type="text/plain; charset=utf-8")


def _page(status: int, title: str, headers: dict[str, str] | None = None) -> Response:
    body = (
        f"<!DOCTYPE html><html lang=en><meta charset=utf-8><title>Error {status} ({title})</title>"
        f"<style>body{{margin:7% auto 0;max-width:390px}}</style><p><b>{status}.</b>"
        f" <ins>That’s an error.</ins><p>{title}.  <ins>That’s all we know.</ins></html>"
    )
    return Response(
        body, status_code=status, media_type="text/html; charset=UTF-8", headers=headers
    )
