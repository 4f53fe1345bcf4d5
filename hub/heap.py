"""The cycle collector in a serving hub.

Start-up leaves some 200,000 long-lived objects behind (modules, plugins, the app and
its routes, SQLAlchemy's and pydantic's models).  Under live load the pipeline and the
live feed make objects that live just long enough to reach the oldest generation, so
full collections come several times a minute, and each of them scanned the whole
start-up heap: pauses of 150-300 ms in which no socket is served (``bench/live.py``
showed them as the live feed's p99 latency).  Frozen once the hub serves
(``gc.freeze``), those objects are left out of every collection, and a full collection
takes a few milliseconds.
"""

from __future__ import annotations

import gc


def freeze_startup_heap() -> int:
    """Leave what exists now out of future collections; how many objects were frozen.

    For the process that serves (``gpshub serve``), once it serves: whatever is frozen
    is never collected, so a process that starts many hubs (a test run) must not call it.
    """
    gc.freeze()
    return gc.get_freeze_count()
