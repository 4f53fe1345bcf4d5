"""The hub process of the crash tests: ``python crash_child.py DATA_DIR [FIRST MAX]``.

It runs a hub (no web server) on the data directory the test prepared, with the burst
source, until it is killed or sent SIGTERM.  ``FIRST MAX`` replace the seconds between
probes of a receiver that is down (5 doubling to 300), so a test need not wait minutes.
"""

from __future__ import annotations

import logging
import signal
import sys
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).parent))

import burst

from hub import Hub, Settings, delivery


async def main(data_dir: Path) -> None:
    settings = Settings(
        data_dir=data_dir,
        outbound_allow_networks=("127.0.0.0/8",),
        delivery_poll_s=0.2,
        status_check_s=3600.0,
    )
    hub = Hub.open(settings, extra_plugins=[("burst", burst)])
    with trio.open_signal_receiver(signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            await nursery.start(hub.run)
            print("running", flush=True)
            async for _ in signals:
                hub.shutdown()
                break
    hub.store.close()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    if len(sys.argv) == 4:
        delivery.PROBE_FIRST_S, delivery.PROBE_MAX_S = float(sys.argv[2]), float(sys.argv[3])
    trio.run(main, Path(sys.argv[1]))
