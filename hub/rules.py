"""Alert rules: their types, parameters and schedules, and the engine that fires them.

Alerts fire on transitions, never on states:

* the first fix of a device for a rule sets the rule's state without firing;
* a condition that stays true does not fire again until it has been false;
* enter/exit may ask for a confirmation count (``confirm_fixes``) and a dwell time
  (``dwell_s``) before the new side counts, so one stray fix fires nothing, and an
  exit only fires after the device was (confirmed) inside;
* outside its weekly schedule a rule keeps tracking state but does not fire;
* out-of-order fixes are not evaluated (the pipeline does not pass them).

Each type produces the ``messageId`` of its alerts (``RULE_TYPES``).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from decimal import Decimal
from typing import Any, ClassVar, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from hub.derive import Derived


class RuleError(ValueError):
    """A rule definition is not acceptable; ``field`` names the part."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NoParams(_Params):
    pass


class PoiParams(_Params):
    """Which POIs (none given: any of the client's) and how sure to be of a crossing."""

    poi_ids: list[int] = Field(default_factory=list)
    group_ids: list[int] = Field(default_factory=list)
    confirm_fixes: int = Field(default=1, ge=1, le=100)
    dwell_s: float = Field(default=0.0, ge=0, le=86400)


class DistanceParams(_Params):
    poi_id: int
    distance_m: float = Field(gt=0)


class OverspeedParams(_Params):
    limit_kmh: float = Field(gt=0)
    min_duration_s: float = Field(default=0.0, ge=0, le=86400)


Op = Literal["<", "<=", ">", ">=", "==", "!="]
_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}


class SensorParams(_Params):
    sensor: str = Field(min_length=1, max_length=200)
    op: Op
    value: bool | float | str

    @model_validator(mode="after")
    def _ordering_needs_a_number(self) -> SensorParams:
        if self.op in ("<", "<=", ">", ">=") and isinstance(self.value, bool | str):
            raise ValueError(f"{self.op} compares numbers; value must be a number")
        return self


@dataclass(frozen=True)
class RuleType:
    message_id: str
    params: type[_Params]
    description: str


RULE_TYPES: dict[str, RuleType] = {
    "enteredPoi": RuleType("enteredPoi", PoiParams, "the device entered a POI"),
    "exitedPoi": RuleType("exitedPoi", PoiParams, "the device left a POI it was inside"),
    "isNotAt-dist": RuleType(
        "isNotAt-dist", DistanceParams, "the device is farther than distance_m from a POI"
    ),
    "ignitionOn": RuleType("ignitionOn", NoParams, "the ignition was switched on"),
    "ignitionOff": RuleType("ignitionOff", NoParams, "the ignition was switched off"),
    "startedMoving": RuleType("startedMoving", NoParams, "the device started moving"),
    "stopped": RuleType("stopped", NoParams, "the device stopped"),
    "overspeed": RuleType(
        "overspeed", OverspeedParams, "speed above limit_kmh for at least min_duration_s"
    ),
    "offline": RuleType("offline", NoParams, "the device went offline"),
    "sensor": RuleType("sensor", SensorParams, "a sensor compared to a value became true"),
}


class Window(BaseModel):
    """Days of the week (0 = Monday) and a time range, in the client's time zone.

    ``end`` before ``start`` runs past midnight into the next day.
    """

    model_config = ConfigDict(extra="forbid")
    days: list[int] = Field(min_length=1)
    start: time = time(0, 0)
    end: time = time(23, 59, 59, 999999)

    @field_validator("days")
    @classmethod
    def _days(cls, days: list[int]) -> list[int]:
        if any(d < 0 or d > 6 for d in days):
            raise ValueError("days are 0 (Monday) to 6 (Sunday)")
        return sorted(set(days))


class Schedule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    windows: list[Window] = Field(min_length=1)

    def active(self, local: datetime) -> bool:
        t, day = local.time(), local.weekday()
        for w in self.windows:
            if w.start <= w.end:
                if day in w.days and w.start <= t <= w.end:
                    return True
            elif (day in w.days and t >= w.start) or ((day - 1) % 7 in w.days and t <= w.end):
                return True
        return False


def parse_params(rule_type: str, params: Mapping[str, Any] | None) -> _Params:
    if rule_type not in RULE_TYPES:
        raise RuleError("type", f"unknown rule type {rule_type!r}; known: {', '.join(RULE_TYPES)}")
    return _validated(RULE_TYPES[rule_type].params, params or {}, "params")


def parse_schedule(raw: Mapping[str, Any] | None) -> Schedule | None:
    if raw is None:
        return None
    return _validated(Schedule, raw, "schedule")  # type: ignore[return-value]


def parse_zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise RuleError("timezone", f"unknown time zone {name!r}") from None


def _validated(model: type[BaseModel], raw: Mapping[str, Any], prefix: str) -> Any:
    try:
        return model.model_validate(dict(raw))
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        raise RuleError(f"{prefix}.{loc}" if loc else prefix, msg) from None


@dataclass(frozen=True)
class Rule:
    """A rule as the engine runs it."""

    id: int
    client_id: int
    owner_id: int
    owner_name: str
    name: str
    type: str
    params: Any
    device_ids: frozenset[int] | None = None  # None with tags None: every device
    tags: frozenset[str] | None = None
    schedule: Schedule | None = None
    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    webhook: bool = False  # its alerts go to the client's alerts webhook

    @property
    def message_id(self) -> str:
        return RULE_TYPES[self.type].message_id

    def applies_to(self, device_id: int, tags: Iterable[str]) -> bool:
        if self.device_ids is None and self.tags is None:
            return True
        if self.device_ids is not None and device_id in self.device_ids:
            return True
        return self.tags is not None and not self.tags.isdisjoint(tags)

    def active_at(self, when: datetime) -> bool:
        return self.schedule is None or self.schedule.active(when.astimezone(self.zone))


@dataclass
class Facts:
    """What a rule may look at for one fix of one device."""

    device_id: int
    fix_time: datetime
    lat: float
    lon: float
    speed_kmh: float | None
    ignition: bool | None
    sensors: Mapping[str, Any]
    derived: Derived
    inside: frozenset[int]
    poi_targets: Callable[[PoiParams], frozenset[int] | None]
    """The POI ids a POI rule watches (``None``: any)."""
    distance_m: Callable[[int], float | None]
    """Distance to a POI (0 inside), ``None`` for an unknown POI."""
    offline: bool = False  # the status watcher's "went offline" event


@dataclass
class Firing:
    """A rule fired: its message id and the type-specific fields of the alert."""

    rule: Rule
    message_id: str
    fields: dict[str, Any] = field(default_factory=dict)


class Engine:
    """Evaluates rules against facts, keeping each rule's state in a dict per device."""

    CONDITIONS: ClassVar[set[str]] = {"isNotAt-dist", "overspeed", "sensor"}

    def evaluate(self, rule: Rule, state: dict[str, Any], facts: Facts) -> list[Firing]:
        """Evaluate ``rule`` for one fix; ``state`` is the rule's state for this device
        (empty the first time) and is updated in place."""
        first = not state
        state.setdefault("seen", True)
        may_fire = not first and rule.active_at(facts.fix_time)
        kind = rule.type
        if kind in ("enteredPoi", "exitedPoi"):
            return self._poi(rule, state, facts, first, may_fire)
        if kind in self.CONDITIONS:
            return self._condition(rule, state, facts, first, may_fire)
        d = facts.derived
        fired = {
            "ignitionOn": d.ignition_changed is True,
            "ignitionOff": d.ignition_changed is False,
            "startedMoving": d.started_moving,
            "stopped": d.stopped,
            "offline": facts.offline,
        }[kind]
        # "offline" is an event of its own, not a fix: it may fire the first time
        if fired and (may_fire or (kind == "offline" and rule.active_at(facts.fix_time))):
            return [Firing(rule, rule.message_id, {"event": RULE_TYPES[kind].description})]
        return []

    # -- enter / exit with confirmation ----------------------------------------------------
    def _poi(
        self, rule: Rule, state: dict[str, Any], facts: Facts, first: bool, may_fire: bool
    ) -> list[Firing]:
        targets = facts.poi_targets(rule.params)
        inside = facts.inside if targets is None else facts.inside & targets
        confirmed: set[int] = set(state.get("in", []))
        candidates: dict[str, list[Any]] = state.setdefault("cand", {})
        if first:
            state["in"] = sorted(inside)
            return []
        params: PoiParams = rule.params
        t = facts.fix_time.timestamp()
        flipped_in: list[int] = []
        flipped_out: list[int] = []
        for poi in sorted(confirmed | inside | {int(k) for k in candidates}):
            now_in = poi in inside
            if now_in == (poi in confirmed):
                candidates.pop(str(poi), None)
                continue
            cand = candidates.get(str(poi))
            if cand is None or cand[0] != now_in:
                cand = candidates[str(poi)] = [now_in, 0, t]
            cand[1] += 1
            if cand[1] >= params.confirm_fixes and t - cand[2] >= params.dwell_s:
                candidates.pop(str(poi))
                if now_in:
                    confirmed.add(poi)
                    flipped_in.append(poi)
                else:
                    confirmed.discard(poi)
                    flipped_out.append(poi)
        state["in"] = sorted(confirmed)
        changed = flipped_in if rule.type == "enteredPoi" else flipped_out
        if not (changed and may_fire):
            return []
        return [
            Firing(
                rule,
                rule.message_id,
                {"poiIds": changed, "event": RULE_TYPES[rule.type].description},
            )
        ]

    # -- conditions that must become true ------------------------------------------------------
    def _condition(
        self, rule: Rule, state: dict[str, Any], facts: Facts, first: bool, may_fire: bool
    ) -> list[Firing]:
        value = self._check(rule, facts)
        if value is None:
            return []  # unknown (a sensor not reported): keep the state as it is
        cond, fields = value
        t = facts.fix_time.timestamp()
        if first:
            state.update(on=cond, since=t if cond else None, fired=cond)
            return []
        if not cond:
            state.update(on=False, since=None, fired=False)
            return []
        if not state.get("on"):
            state.update(on=True, since=t, fired=False)
        hold = rule.params.min_duration_s if rule.type == "overspeed" else 0.0
        if state.get("fired") or t - (state.get("since") or t) < hold:
            return []
        state["fired"] = True
        if not may_fire:
            return []
        fields["event"] = RULE_TYPES[rule.type].description
        fields["startDate"] = datetime.fromtimestamp(state.get("since") or t, UTC).isoformat()
        return [Firing(rule, rule.message_id, fields)]

    def _check(self, rule: Rule, facts: Facts) -> tuple[bool, dict[str, Any]] | None:
        p = rule.params
        if rule.type == "isNotAt-dist":
            dist = facts.distance_m(p.poi_id)
            if dist is None:
                return None
            return dist > p.distance_m, {
                "poiId": p.poi_id,
                "metersFromPoi": meters_above(dist, p.distance_m),
                "distanceFromPoi": distance_text(dist, p.distance_m),
            }
        if rule.type == "overspeed":
            if facts.speed_kmh is None:
                return None
            return facts.speed_kmh > p.limit_kmh, {"speed": facts.speed_kmh, "limit": p.limit_kmh}
        value = facts.sensors.get(p.sensor)
        if value is None:
            return None
        try:
            cond = bool(_OPS[p.op](value, p.value))
        except TypeError:
            return None  # a sensor of another type than the rule expects
        return cond, {"sensor": p.sensor, "value": value, "op": p.op, "threshold": p.value}


KM_FROM_M = 10_000.0
"""Distances from this many metres on are written in whole km, shorter ones in metres."""
_MAX_DECIMALS = 15


def _decimals_above(value: float, digits: int, above: Decimal | None) -> str | None:
    """``value`` written with ``digits`` decimals, or with more when fewer would write a
    number at or below ``above``; ``None`` when no number of decimals does."""
    for d in range(digits, _MAX_DECIMALS + 1):
        text = f"{value:.{d}f}"
        if above is None or Decimal(text) > above:
            return text
    return None


def distance_text(meters: float, above: float | None = None) -> str:
    """A distance in Startrack's style: ``157041.0`` is ``"157 km"``, ``1210.8`` is
    ``"1211 m"`` (whole metres below ``KM_FROM_M``).

    ``above`` is the threshold the distance exceeds (an ``isNotAt-dist`` rule's
    ``distance_m``): the text then never shows a number at or below it, adding decimals
    where rounding would (1200.4 m beyond 1200 m is ``"1200.4 m"``, not ``"1200 m"``).
    """
    limit = None if above is None else Decimal(repr(float(above)))
    if meters >= KM_FROM_M:
        km = _decimals_above(meters / 1000, 0, None if limit is None else limit / 1000)
        if km is not None:
            return f"{km} km"
    return f"{_decimals_above(meters, 0, limit) or repr(meters)} m"


def meters_above(meters: float, above: float, digits: int = 1) -> float:
    """``meters`` (beyond ``above``) rounded to ``digits`` decimals, or to more when that
    would give ``above`` or less; ``meters`` itself when every rounding would."""
    for d in range(digits, _MAX_DECIMALS + 1):
        shown = round(meters, d)
        if shown > above:
            return shown
    return meters
