"""The hub process of the crash test: ``python crash_child.py DATA_DIR``.

It runs a hub (no web server) on the data directory the test prepared, with the burst
source, until it is killed or sent SIGTERM.
"""

from __future__ import annotations

import logging
import signal
import sys
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).parent))

import burst

from hub import Hub, Settings


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
    trio.run(main, Path(sys.argv[1]))
