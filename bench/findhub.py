"""Find Hub: a locate cycle for 50 devices against the plugin's fakes, and the cost of
decrypting a finder report.

A child process serves ``FakeFindHub`` (auth, Nova, GCM check-in and the MCS push server)
with ``--devices`` trackers, half of them answering with their own report (AES-GCM) and
half with a report from the crowd (secp160r1 ECIES + AES-EAX), each answer pushed at once.
This process runs ``--cycles`` polls of a ``FindHubSource`` the way a connection's runner
does, every device due each time (fresh cursors): list the devices, check in, log in to
MCS, send one locate request per device, collect and decrypt the pushed answers, make the
fixes.  Per cycle it prints the HTTP requests (Nova, auth, check-in), pushes received,
fixes, wall time and CPU time (of this process only: the fake's work — encrypting the
answers — is in the child).  The first cycle includes the token request; the others use
the cached token.  ``--stagger`` is 0 here so that a cycle measures work, not waiting; with
Google's 5 s a poll asks at most 1 + (100 − 60) / 5 = 9 devices (see ``source.py``), so 50
devices are asked over 6 polls.

Then the decryption cost: ``reports.decrypt_device_reports`` on a device carrying
``--reports`` finder reports, per report (EIK cached), and one own report for comparison.

    make bench        # or: uv run python bench/findhub.py --devices 50 --cycles 5
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import subprocess
import sys
import time
from typing import Any

import trio


def serve(devices: int) -> None:
    """The child: serve a fake account until stdin closes; print its settings first."""
    from gpshub_findhub.testing import FakeFindHub

    fake = FakeFindHub()
    now = time.time()
    for i in range(devices):
        cid = fake.add_tracker(f"Tag {i}")
        status = "own" if i % 2 == 0 else "crowdsourced"
        fake.report(cid, 48.0 + i / 1000, 9.0, alt=400, accuracy=20, t=now - 60, status=status)

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            await fake.start(nursery)
            print(
                json.dumps(
                    {
                        "credentials": fake.credentials(),
                        "options": fake.options(stagger_s=0),
                        "devices": list(fake.devices),
                    }
                ),
                flush=True,
            )
            await trio.to_thread.run_sync(sys.stdin.read)  # until the parent closes it
            nursery.cancel_scope.cancel()

    trio.run(main)


async def cycles(settings: dict[str, Any], count: int) -> list[dict[str, Any]]:
    from gpshub_findhub.source import FindHubSource
    from hub.clock import SystemClock
    from hub.runner import new_http_client
    from hub.source import MemoryStateStore, SourceContext
    from hub.testing import LOOPBACK

    devices = settings["devices"]
    out = []
    async with new_http_client(LOOPBACK) as http:
        requests: list[str] = []

        async def count_request(request: Any) -> None:
            requests.append(request.url.path)

        http.event_hooks["request"].append(count_request)
        ctx: Any = SourceContext(
            credentials=FindHubSource.parse_credentials(settings["credentials"]),
            options=FindHubSource.parse_options(settings["options"]),
            http=http,
            log=logging.getLogger("bench.findhub"),
            state=MemoryStateStore(),
            clock=SystemClock(),
            connection_id=1,
        )
        source = FindHubSource(ctx)
        from hub.source import DeviceRef

        refs = [DeviceRef(i + 1, cid, cid) for i, cid in enumerate(devices)]
        for _ in range(count):
            requests.clear()
            nova = source._nova
            issued = nova.tokens.issued if nova is not None else 0
            wall, cpu = time.perf_counter(), time.process_time()
            result = await source.poll(refs, {})
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            nova = source._nova
            assert nova is not None
            out.append(
                {
                    "nova": sum(1 for p in requests if "/nova/" in p),
                    "auth": nova.tokens.issued - issued,
                    "checkin": sum(1 for p in requests if p.endswith("/checkin")),
                    "fixes": result.fix_count,
                    "notices": result.notices,
                    "wall_s": wall,
                    "cpu_s": cpu,
                }
            )
    return out


def decrypt_cost(reports: int) -> tuple[float, float]:
    """µs per finder report and per own report through ``decrypt_device_reports``."""
    from gpshub_findhub.reports import EikCache, decrypt_device_reports
    from gpshub_findhub.testing import FakeFindHub

    fake = FakeFindHub(now=lambda: 1_758_000_000.0)
    finder, own = fake.add_tracker("Crowd"), fake.add_tracker("Own")
    for i in range(reports):
        fake.report(finder, 48.4, 9.9 + i / 1e5, t=1_758_000_000 - 1024 * i, status="crowdsourced")
    fake.report(own, 52.52, 13.405, t=1_758_000_000)
    cache = EikCache()
    result = []
    for cid, n, runs in ((finder, reports, 3), (own, 1, 300)):
        device = fake.devices[cid].metadata(listed=False, latest=n)
        decrypt_device_reports(device, fake.owner_key, cache)  # warm: EIK cached
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            located = decrypt_device_reports(device, fake.owner_key, cache)
            times.append((time.perf_counter() - start) / n)
            assert len(located) == n
        result.append(statistics.median(times) * 1e6)
    return result[0], result[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=50)
    parser.add_argument("--cycles", type=int, default=5)
    parser.add_argument("--reports", type=int, default=100, help="finder reports to decrypt")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.devices)
        return
    logging.basicConfig(level=logging.WARNING)
    child = subprocess.Popen(
        [sys.executable, __file__, "--serve", "--devices", str(args.devices)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        settings = json.loads(child.stdout.readline())
        rows = trio.run(cycles, settings, args.cycles)
    finally:
        if child.stdin is not None:
            child.stdin.close()
        child.wait(timeout=30)
    print(f"Find Hub locate cycle: {args.devices} devices (half own reports, half crowdsourced)")
    print("cycle  nova  auth  check-in  fixes   wall ms   CPU ms")
    for i, row in enumerate(rows, 1):
        print(
            f"{i:5d} {row['nova']:5d} {row['auth']:5d} {row['checkin']:9d} {row['fixes']:6d}"
            f" {row['wall_s'] * 1000:9.1f} {row['cpu_s'] * 1000:8.1f}"
        )
        if row["notices"]:
            print(f"      notices: {'; '.join(row['notices'])}")
    steady = rows[1:] or rows
    print(
        f"steady cycles: {statistics.median(r['wall_s'] for r in steady) * 1000:.0f} ms wall,"
        f" {statistics.median(r['cpu_s'] for r in steady) * 1000:.0f} ms CPU"
        f" ({statistics.median(r['cpu_s'] for r in steady) / args.devices * 1000:.2f} ms per device)"
    )
    finder_us, own_us = decrypt_cost(args.reports)
    print(
        f"decryption through decrypt_device_reports: {finder_us / 1000:.2f} ms per finder report"
        f" (secp160r1 in pure Python), {own_us:.0f} µs per own report"
    )


if __name__ == "__main__":
    main()
