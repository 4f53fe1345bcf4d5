"""Range polling bookkeeping: windows, late messages, boundaries, truncation, grouping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub import Cursor, RangeWindow, group_by_start

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def msg(t: float, received: float | None = None) -> tuple[datetime, float | None, str]:
    """A message at device time ``t`` received at ``received`` (both seconds after T0)."""
    rt = None if received is None else at(received).timestamp()
    return at(t), rt, f"m{t:g}"


class Upstream:
    """A platform's message store and a poller using RangeWindow against it."""

    def __init__(self, window: RangeWindow) -> None:
        self.window = window
        self.messages: list[tuple[float, float]] = []  # (device time, receive time)
        self.cursor = Cursor()
        self.emitted: list[str] = []

    def arrive(self, t: float, received: float) -> None:
        self.messages.append((t, received))

    def poll(self, now: float, cap: int | None = None, resume: bool = False) -> list[str]:
        """One request of at most ``cap`` messages, oldest first; a cut answer resumes at
        its last message (inclusive, as Flespi pages) when ``resume``."""
        start = self.window.start(self.cursor, at(now))
        found = sorted((t, r) for t, r in self.messages if r <= now and start <= at(t) <= at(now))
        complete = cap is None or len(found) <= cap
        found = found if complete else found[:cap]
        new, self.cursor = self.window.select(
            self.cursor,
            [msg(t, r) for t, r in found],
            scanned_to=at(now) if complete else None,
            resume_from=at(found[-1][0]) if resume and not complete else None,
        )
        self.emitted += new
        return new


def test_first_poll_backfills_then_fetches_from_the_cursor() -> None:
    window = RangeWindow(lookback_s=0, backfill_s=600)
    assert window.start(Cursor(), at(1000)) == at(400)
    new, cursor = window.select(Cursor(), [msg(500, 501), msg(450, 451)], scanned_to=at(1000))
    assert new == ["m450", "m500"]
    assert cursor.last_fix_time == at(500)
    # the next window starts at the last fix, however long ago it was
    assert window.start(cursor, at(1030)) == at(500)


def test_the_boundary_fix_is_not_emitted_twice() -> None:
    window = RangeWindow(lookback_s=0)
    _, cursor = window.select(Cursor(), [msg(100, 101)], scanned_to=at(100))
    # an inclusive upstream range returns the fix at the cursor again
    new, cursor = window.select(cursor, [msg(100, 101), msg(130, 131)], scanned_to=at(130))
    assert new == ["m130"]
    new, _ = window.select(cursor, [msg(130, 131)], scanned_to=at(160))
    assert new == []


def test_a_late_backdated_message_is_emitted_once() -> None:
    up = Upstream(RangeWindow(lookback_s=300, backfill_s=3600))
    up.arrive(100, 101)
    assert up.poll(110) == ["m100"]
    up.arrive(140, 141)
    up.arrive(90, 150)  # recorded before m100, reaches the platform later
    assert up.poll(160) == ["m90", "m140"]
    for now in (190, 220, 250):
        assert up.poll(now) == []
    assert sorted(up.emitted) == ["m100", "m140", "m90"]


def test_late_messages_sharing_a_receive_second_are_told_apart() -> None:
    up = Upstream(RangeWindow(lookback_s=300))
    up.arrive(100, 120)
    up.arrive(110, 120)
    assert up.poll(121) == ["m100", "m110"]
    up.arrive(95, 120)  # same receive second, seen only now (integer receive times)
    assert up.poll(150) == ["m95"]
    assert up.poll(180) == []


def test_without_receive_times_only_newer_fixes_count() -> None:
    window = RangeWindow(lookback_s=300)
    _, cursor = window.select(Cursor(), [msg(100)], scanned_to=at(110))
    new, _ = window.select(cursor, [msg(100), msg(90), msg(120)], scanned_to=at(140))
    assert new == ["m120"]


def test_beyond_the_lookback_late_messages_are_not_fetched() -> None:
    up = Upstream(RangeWindow(lookback_s=60))
    up.arrive(1000, 1001)
    assert up.poll(1010) == ["m1000"]
    up.arrive(500, 1020)
    assert up.poll(1040) == []


def test_a_truncated_answer_keeps_the_receive_mark_so_nothing_is_lost() -> None:
    up = Upstream(RangeWindow(lookback_s=300, backfill_s=3600))
    for i in range(10):
        up.arrive(100 + i, 200 - i)  # receive times run backwards
    first = up.poll(300, cap=4)
    assert first == ["m100", "m101", "m102", "m103"]
    assert up.window.received_floor(up.cursor) is None
    up.arrive(95, 310)  # a late one, while no receive mark exists yet
    rest = up.poll(330)
    # without a mark the earlier ones may come again (the store drops repeats): none is lost
    assert set(rest) == {"m95"} | {f"m{t}" for t in range(100, 110)}
    assert up.poll(360) == []
    up.arrive(96, 365)
    assert up.poll(390) == ["m96"]


def test_received_floor_follows_complete_answers() -> None:
    window = RangeWindow()
    _, cursor = window.select(Cursor(), [msg(100, 105), msg(101, 103)], scanned_to=at(110))
    assert window.received_floor(cursor) == at(105).timestamp()


def test_the_plugins_own_state_is_kept() -> None:
    window = RangeWindow()
    _, cursor = window.select(Cursor(None, {"session": "x"}), [msg(1, 2)], scanned_to=at(5))
    assert cursor.state["session"] == "x"


def test_a_window_never_starts_after_now() -> None:
    window = RangeWindow(lookback_s=60)
    cursor = Cursor(at(1000), {})
    assert window.start(cursor, at(500)) == at(440)


def test_negative_durations_are_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        RangeWindow(lookback_s=-1)


def test_group_by_start_batches_devices_with_close_windows() -> None:
    starts = {f"d{i}": at(i) for i in range(5)} | {"old": at(-86_400), "new": at(2)}
    groups = group_by_start(starts, size=3, span_s=300)
    assert groups == [
        (at(-86_400), ["old"]),
        (at(0), ["d0", "d1", "d2"]),
        (at(2), ["new", "d3", "d4"]),
    ]
    assert group_by_start({}, size=10, span_s=1) == []
    with pytest.raises(ValueError, match="size"):
        group_by_start(starts, size=0, span_s=1)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 600), st.integers(0, 200)),
        unique_by=lambda m: m[0],
        max_size=40,
    ),
    st.sampled_from([10, 30, 45]),
)
def test_every_message_within_the_lookback_is_emitted_exactly_once(
    arrivals: list[tuple[int, int]], interval: int
) -> None:
    """Messages recorded at ``t`` reach the platform up to 200 s later, in any order;
    with a 300 s lookback and complete answers, each is emitted once."""
    up = Upstream(RangeWindow(lookback_s=300, backfill_s=3600))
    for t, delay in arrivals:
        up.arrive(1000 + t, 1000 + t + delay)
    for now in range(1000, 1000 + 900, interval):
        up.poll(now)
    up.poll(2000)
    assert sorted(up.emitted) == sorted(f"m{1000 + t}" for t, _ in arrivals)


def test_a_backlog_larger_than_a_page_is_caught_up_page_by_page() -> None:
    """Without a resume point, a lookback holding more than a page would be read again
    and again; with one, each poll goes on where the last stopped."""
    up = Upstream(RangeWindow(lookback_s=300, backfill_s=3600))
    up.arrive(0, 1)
    assert up.poll(10) == ["m0"]
    for t in range(20, 220):
        up.arrive(t, t + 1)  # 200 messages, 5 pages of 40
    polls = [up.poll(230, cap=40, resume=True) for _ in range(6)]
    # each page repeats only the message it resumes at (inclusive), which is not emitted
    assert [len(p) for p in polls] == [39, 39, 39, 39, 39, 5]
    assert up.emitted == [f"m{t}" for t in [0, *range(20, 220)]]  # in order, no repeats
    assert "resume" not in up.cursor.state
    up.arrive(100, 235)  # a late one after the catch-up
    later = up.poll(240, resume=True)
    assert "m100" in later and up.poll(270) == []
    assert set(up.emitted) == {f"m{t}" for t in [0, *range(20, 220)]}


def test_resuming_starts_at_the_resume_point_without_lookback() -> None:
    window = RangeWindow(lookback_s=300)
    _, cursor = window.select(Cursor(), [msg(100, 101)], scanned_to=None, resume_from=at(100.5))
    assert window.start(cursor, at(1000)) == at(100.5)
    assert window.start(cursor, at(50)) == at(50)  # never after now
    # at the resume point's boundary nothing is repeated, receive times or not
    new, cursor = window.select(cursor, [msg(100, 101), msg(101, 102)], scanned_to=at(200))
    assert new == ["m101"]
    assert window.start(cursor, at(230)) == at(101 - 300)


def test_without_receive_times_remembered_fix_times_find_late_messages() -> None:
    """For platforms whose history has no receive time (GPS-Server.net): the fix times
    emitted within the lookback are kept, so a late one is new and nothing repeats."""
    window = RangeWindow(lookback_s=300, remember_fixes=True)
    new, cursor = window.select(Cursor(), [msg(100), msg(110)], scanned_to=at(120))
    assert new == ["m100", "m110"]
    new, cursor = window.select(cursor, [msg(100), msg(110), msg(130)], scanned_to=at(150))
    assert new == ["m130"]  # the inclusive boundary and what came before: not again
    new, cursor = window.select(cursor, [msg(90), msg(100), msg(110), msg(130)], scanned_to=at(180))
    assert new == ["m90"]  # recorded earlier, uploaded late
    new, cursor = window.select(cursor, [msg(90), msg(100), msg(110), msg(130)], scanned_to=at(210))
    assert new == []
    # kept while the device is silent; what falls behind its newer fixes' lookback is
    # forgotten, and not fetched any more either
    _, cursor = window.select(cursor, [], scanned_to=at(1000))
    assert len(cursor.state["seen_t"]) == 4
    _, cursor = window.select(cursor, [msg(1000)], scanned_to=at(1010))
    assert cursor.state["seen_t"] == [at(1000).timestamp()]


def test_a_silent_device_uploading_its_buffer_later_loses_nothing() -> None:
    """A tracker out of coverage for 20 minutes keeps its fixes and uploads them all at
    once when it is back: its range kept starting at its last stored fix, so every
    buffered fix is fetched, however far behind the last poll it lies."""
    up = Upstream(RangeWindow(lookback_s=300, backfill_s=3600))
    up.arrive(0, 1)
    assert up.poll(30) == ["m0"]
    for now in range(60, 1260, 30):  # silent: nothing reaches the platform
        assert up.poll(now) == []
        assert up.window.silent(up.cursor, at(now)) == (now > 300)
    buffered = list(range(10, 1200, 10))
    for t in buffered:
        up.arrive(t, 1250)  # the black box uploads 20 minutes of fixes at once
    assert up.poll(1260) == [f"m{t}" for t in buffered]
    assert up.poll(1290) == []
    assert not up.window.silent(up.cursor, at(1290))


def test_a_silence_longer_than_the_maximum_lookback_is_fetched_from_there() -> None:
    window = RangeWindow(lookback_s=300, max_lookback_s=3600)
    cursor = Cursor(at(0), {})
    assert window.start(cursor, at(1000)) == at(-300)
    assert window.start(cursor, at(10_000)) == at(10_000 - 3600)
    # never shorter than the late window itself
    assert RangeWindow(lookback_s=300, max_lookback_s=10).start(cursor, at(100)) == at(-200)


def test_a_device_without_fixes_is_fetched_from_its_first_range_on() -> None:
    up = Upstream(RangeWindow(lookback_s=300, backfill_s=600, max_lookback_s=7200))
    assert up.poll(1000) == []  # first poll: from 400
    assert up.window.start(up.cursor, at(2000)) == at(400)
    assert up.window.start(up.cursor, at(9000)) == at(9000 - 7200)
    up.arrive(500, 1990)  # recorded before the first poll, uploaded much later
    assert up.poll(2000) == ["m500"]
    assert "origin" not in up.cursor.state
    assert up.window.start(up.cursor, at(2030)) == at(200)


def test_an_earlier_versions_scan_mark_no_longer_moves_the_range() -> None:
    window = RangeWindow(lookback_s=300)
    cursor = Cursor(at(0), {"scan": at(5000).timestamp()})
    assert window.start(cursor, at(5030)) == at(-300)
    _, cursor = window.select(cursor, [], scanned_to=at(5030))
    assert "scan" not in cursor.state
