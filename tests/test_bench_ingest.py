"""bench/ingest.py --processes: real processes ingesting into one PostgreSQL database.

A small run (two counts, a few devices) checks the bench works end to end: every
position stored once and received by every live subscriber through the relay.  Its
timings are the bench's business and are not looked at here.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

BENCH = Path(__file__).parent.parent / "bench" / "ingest.py"


def cells(output: str, label: str) -> list[str]:
    """The cells of the row that starts with ``label`` (one per process count)."""
    for line in output.splitlines():
        if line.startswith(label):
            return line[len(label) :].split()
    raise AssertionError(f"no row {label!r} in:\n{output}")


@pytest.mark.postgres
@pytest.mark.parametrize("relay", [True, False])
def test_processes_store_and_relay_every_position(pg_url: str, relay: bool) -> None:
    # the bench makes schemas of its own: the database's URL without the fixture's one
    base = sa.engine.make_url(pg_url).difference_update_query(["options"])
    counts = ["1", "2"] if relay else ["2"]
    args = [
        sys.executable, str(BENCH), "--database-url", base.render_as_string(hide_password=False),
        "--processes", ",".join(counts), "--devices", "12", "--fixes", "5", "--producers", "3",
        "--subscribers", "3",
    ]  # fmt: skip
    if not relay:
        args.append("--no-relay")
    done = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert cells(out, "processes") == counts
    assert cells(out, "stored rows") == ["60"] * len(counts)
    # with the relay each subscriber gets every process's positions, else its own's
    want = ["60", "60"] if relay else ["its", "process's,", "all"]
    assert cells(out, "positions each sub") == want
    assert "LAGGED" not in out and "LOST" not in out
