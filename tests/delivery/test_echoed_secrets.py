"""A receiver that echoes the request back: no form of a sink's secret header value may
reach what the hub stores (dead letters, the sink's and the owed messages' last error)
or logs.

The receiver on loopback refuses every request (400, a dead letter) with a body that
quotes the request's ``X-Api-Key`` header in one form per path: JSON-escaped (four ways),
URL-encoded (``+`` and ``%20``, upper- and lower-case hex), HTML-escaped, base64 at each
of the three alignments (standard and URL-safe, padded or not, and inside Basic
credentials ``user:secret``), raw, and raw across the excerpt's cut.  Other paths answer
a redirect whose ``Location`` quotes the value URL-encoded: that text goes to
``last_error``.
"""

from __future__ import annotations

import base64
import html
import json
import logging
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
import sqlalchemy as sa
import trio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from trio.testing import MockClock
from world import World, until, world

from hub.models import dead_t, pending_t, sinks_t
from hub.testing import serve_app

SECRET = 'Zq9 "quoted" \\ back/slash +plus %41 & <b> it\'s=end ???>>>~~~'
"""The sink's header value: every character that some encoding changes (the end makes
``+`` and ``/`` in its base64 at every alignment)."""


def _json_html_safe(text: str) -> str:
    """JSON as Go and HTML-safe encoders write it: ``<``, ``>``, ``&``, ``'`` and ``"``
    as ``\\u00XX`` escapes."""
    out = json.dumps(text)[1:-1].replace('\\"', '"')
    for c in "<>&'\"":
        out = out.replace(c, f"\\u{ord(c):04x}")
    return out


def _b64(data: str, *, urlsafe: bool = False, pad: bool = True) -> str:
    raw = data.encode()
    text = (base64.urlsafe_b64encode if urlsafe else base64.b64encode)(raw).decode()
    return text if pad else text.rstrip("=")


def _b64_core(prefix: str, *, urlsafe: bool = False) -> str:
    """The base64 characters that encode only the secret's bits (what would leak)."""
    encoded = _b64(prefix + SECRET + "!!!", urlsafe=urlsafe)
    start = -(-len(prefix.encode()) * 8 // 6)
    end = (len(prefix.encode()) + len(SECRET.encode())) * 8 // 6
    return encoded[start:end]


def _lower_hex(text: str) -> str:
    out, i = [], 0
    while i < len(text):
        if text[i] == "%":
            out.append(text[i : i + 3].lower())
            i += 3
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


# each form: how the receiver quotes the value, and the text that must not be stored
FORMS: dict[str, tuple[Callable[[str], str], str]] = {
    "json": (lambda v: json.dumps({"x-api-key": v}), json.dumps(SECRET)[1:-1]),
    "json-slashes": (
        lambda v: json.dumps({"x-api-key": v}).replace("/", "\\/"),
        json.dumps(SECRET)[1:-1].replace("/", "\\/"),
    ),
    "json-html-safe": (
        lambda v: '{"x-api-key": "' + _json_html_safe(v) + '"}',
        _json_html_safe(SECRET),
    ),
    "json-twice": (
        lambda v: json.dumps({"echo": json.dumps({"x-api-key": v})}),
        json.dumps(json.dumps(SECRET))[1:-1],
    ),
    "url-plus": (lambda v: "you sent x-api-key=" + quote_plus(v), quote_plus(SECRET)),
    "url-percent-lower": (
        lambda v: "you sent x-api-key=" + _lower_hex(quote(v, safe="")),
        _lower_hex(quote(SECRET, safe="")),
    ),
    "html": (lambda v: f"<p>Bad key <code>{html.escape(v)}</code></p>", html.escape(SECRET)),
    "raw": (lambda v: f"x-api-key: {v}", SECRET),
    # the answer is kept from its start: the secret starts 18 characters before the cut
    "raw-across-the-cut": (lambda v: "." * 470 + f" x-api-key: {v}", SECRET[:14]),
    "basic": (
        lambda v: "Authorization: Basic " + _b64("user:" + v),
        _b64_core("user:"),
    ),
}
for _align in range(3):
    _prefix = "xy"[:_align]  # the secret starts at an offset of 0, 1 or 2 (mod 3)
    FORMS[f"base64-{_align}"] = (
        lambda v, p=_prefix: _b64(p + v),
        _b64_core(_prefix),
    )
    FORMS[f"base64url-nopad-{_align}"] = (
        lambda v, p=_prefix: json.dumps({"echo": _b64(p + v, urlsafe=True, pad=False)}),
        _b64_core(_prefix, urlsafe=True),
    )
    FORMS[f"base64-json-escaped-{_align}"] = (  # PHP's json_encode writes / as \/
        lambda v, p=_prefix: json.dumps({"echo": _b64(p + v)}).replace("/", "\\/"),
        _b64_core(_prefix).replace("/", "\\/"),
    )

REDIRECTS: dict[str, tuple[Callable[[str], str], str]] = {
    "redirect-plus": (quote_plus, quote_plus(SECRET)),
    "redirect-percent-lower": (
        lambda v: _lower_hex(quote(v, safe="")),
        _lower_hex(quote(SECRET, safe="")),
    ),
}


def echo_app() -> Starlette:
    async def echo(request: Request) -> Response:
        value = request.headers["x-api-key"]
        form = request.path_params["form"]
        if form in REDIRECTS:
            where = "https://receiver.example/login?key=" + REDIRECTS[form][0](value)
            return Response(status_code=302, headers={"location": where})
        return Response(FORMS[form][0](value), status_code=400, media_type="text/plain")

    return Starlette(routes=[Route("/{form}", echo, methods=["POST"])])


def stored_texts(w: World, sink_id: int) -> list[str]:
    """Every text the hub stored about the sink's requests."""
    with w.hub.store.engine.connect() as conn:
        texts = [
            *conn.execute(
                sa.select(dead_t.c.error, dead_t.c.excerpt).where(dead_t.c.sink_id == sink_id)
            ).all(),
            *conn.execute(
                sa.select(pending_t.c.last_error).where(pending_t.c.sink_id == sink_id)
            ).all(),
            *conn.execute(sa.select(sinks_t.c.last_error).where(sinks_t.c.id == sink_id)).all(),
        ]
    return [t for row in texts for t in row if t]


def test_the_forms_are_what_the_receiver_sends() -> None:
    """The test's own premise: each needle is in what its form makes of the secret."""
    for name, (make, needle) in FORMS.items():
        assert needle and needle in make(SECRET), name
        if not name.startswith("raw"):
            assert SECRET not in make(SECRET), name
    for name, (make, needle) in REDIRECTS.items():
        assert needle in make(SECRET), name
    for align in range(3):
        assert "/" in FORMS[f"base64-{align}"][1] and "+" in FORMS[f"base64-{align}"][1]
        assert "-" in FORMS[f"base64url-nopad-{align}"][1]
        assert "\\/" in FORMS[f"base64-json-escaped-{align}"][1]


async def test_echoed_secret_header_never_stored_or_logged(
    tmp_path: Path, clock: MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    w = world(tmp_path, devices=1)
    sinks: dict[str, int] = {}
    async with trio.open_nursery() as nursery:
        url = await nursery.start(serve_app, echo_app())
        for form in [*FORMS, *REDIRECTS]:
            sinks[form] = w.sink(f"{url}/{form}", headers={"X-Api-Key": SECRET})
        await nursery.start(w.hub.run)
        await w.feed(3)

        def settled() -> bool:
            # a redirect is retried; after three failures the receiver is down (logged)
            return all(w.stats(sinks[f])["dead_letters"] == 3 for f in FORMS) and all(
                w.hub.store.sinks.get(sinks[f]).probe_at is not None for f in REDIRECTS
            )

        await until(settled)
        w.hub.shutdown()
        nursery.cancel_scope.cancel()

    leaks = {}
    for form, (_, needle) in {**FORMS, **REDIRECTS}.items():
        texts = stored_texts(w, sinks[form])
        assert texts, form
        if any(needle in t or "quoted" in t for t in texts):
            leaks[form] = [t for t in texts if needle in t or "quoted" in t]
        elif not any("[redacted]" in t for t in texts):
            leaks[form] = ["nothing redacted: the test did not see the echo", *texts]
    assert sorted(leaks) == []
    # httpcore's debug records quote answers' headers: the hub keeps that logger at
    # WARNING and above (``configure_logging``), where it says nothing of requests
    logged = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("httpcore"))
    assert "[redacted]" in logged  # the redirects' errors are logged, scrubbed
    for form, (_, needle) in {**FORMS, **REDIRECTS}.items():
        assert needle not in logged, form
