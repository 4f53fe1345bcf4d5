"""Schemathesis against the served API: every route of ``/openapi.json``, fuzzed over HTTP.

The hub runs as in every web test (hypercorn on loopback, under trio); schemathesis runs
in a process of its own and talks HTTP to it, with the administrator's token and then a
client manager's.  Required: no server error, no answer the document does not describe
(status, content type, body, headers), ``Allow`` right on 405s, data the schema allows
accepted and data it forbids refused.  Bounded for the suite; to fuzz longer by hand::

    GPSHUB_FUZZ_EXAMPLES=200 GPSHUB_FUZZ_SECONDS=1800 \\
        .venv/bin/pytest -p no:cacheprovider -m fuzz tests/web/test_fuzz.py -s

Each run's output and JSON report (cases, failures by check) are kept in pytest's
temporary folder and their paths printed.  The suite uses a fixed seed, so that it runs
the same cases every time; ``GPSHUB_FUZZ_SEED=random`` (or another number) explores.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
import trio
from harness import Web

pytestmark = pytest.mark.fuzz

EXAMPLES = int(os.environ.get("GPSHUB_FUZZ_EXAMPLES", "4"))
SECONDS = int(os.environ.get("GPSHUB_FUZZ_SECONDS", "0"))  # 0: no time budget, examples only
SEED = os.environ.get("GPSHUB_FUZZ_SEED", "20261206")  # "random": a new one every run
SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"

CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
        "negative_data_rejection",
        "positive_data_acceptance",
        "unsupported_method",
        "allow_header_conformance",
        "missing_required_header",
        "ignored_auth",
    ]
)


async def _furnish(web: Web) -> None:
    """A few objects of client A, so that small ids find something to answer."""
    conn = web.connection("a")
    device = web.device("a", name="Van", connection_id=conn, upstream_id="u1")
    await web.write_positions(device, 3)
    r = await web.post(
        "a_mgr",
        "/api/geofences",
        json={
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [-90.5, 14.6]},
            "properties": {"name": "Depot", "radius_m": 200},
        },
    )
    assert r.status_code == 201, r.text


async def _fuzz(web: Web, who: str, report: Path) -> dict[str, Any]:
    me = (await web.get(who, "/api/me")).json()
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "fuzz_hooks",
        "PYTHONPATH": os.pathsep.join(
            [str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]
        ),
        "GPSHUB_FUZZ_OWN": json.dumps({"token_id": me["token_id"], "user_id": me["user"]["id"]}),
    }
    command = [
        str(SCHEMATHESIS),
        "run",
        f"{web.url}/openapi.json",
        "--header",
        f"Authorization: Bearer {web.tokens[who]}",
        "--checks",
        CHECKS,
        "--max-examples",
        str(EXAMPLES),
        *(["--max-time", str(SECONDS)] if SECONDS else []),
        "--phases",
        "examples,coverage,fuzzing",
        "--workers",
        "1",
        "--generation-database",
        "none",
        "--request-timeout",
        "60",
        "--no-color",
        "--report",
        "json",
        "--report-json-path",
        str(report),
        *(["--seed", SEED] if SEED != "random" else []),
    ]
    result = await trio.run_process(
        command,
        env=env,
        cwd=report.parent,  # schemathesis keeps a cache folder where it runs
        capture_stdout=True,
        capture_stderr=True,
        check=False,
    )
    output = trio.Path(report.with_suffix(".txt"))
    await output.write_bytes(result.stdout + result.stderr)
    print(f"schemathesis as {who}: output in {output}, report in {report}")
    assert await trio.Path(report).exists(), result.stderr.decode(errors="replace")[-4000:]
    data: dict[str, Any] = json.loads(await trio.Path(report).read_text())
    return data


@pytest.mark.parametrize("who", ["a_mgr", "admin"])
async def test_schemathesis(web: Web, tmp_path: Path, who: str) -> None:
    await _furnish(web)
    data = await _fuzz(web, who, tmp_path / f"schemathesis-{who}.json")
    cases = data["test_cases"]["generated"]
    failures = {f["title"]: f["count"] for f in data["failures"]}
    print(f"schemathesis as {who}: {cases} cases, failures {failures}, errors {data['errors']}")
    assert data["operations"]["tested"] > 0
    assert cases > 0
    assert not data["errors"]
    assert not failures
