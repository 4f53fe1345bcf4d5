"""Every inferred fact about the 3D Tracking wire format, in one place to adjust.

3D Tracking's public documentation could not be read; what the plugin relies on comes from
public clients (tagged [C] in the reference) or is a best guess ([I]).  Each guess is a
constant here (or an option of the connection), so a correction is a one-line change.
"""

from __future__ import annotations

import re

DEFAULT_BASE_URL = "https://api.3dtracking.net/api/v1.0"

LOGIN_PATH = "Authentication/UserAuthenticate"
UNITS_PATH = "Units/Unit/List"
LATEST_PATH = "Units/LatestPositionsList"
FEED_PATH = "Data/PositionsList"
READINGS_PATH = "Data/SensorReadingsList"

LOGIN_METHOD = "POST"
"""[C/I] ``UserAuthenticate`` answers GET and POST; the parameters go in the query string
either way (no form body is known to be read), so the hub's log redaction matters."""

OK = "ok"
"""``Status.Result`` of a successful answer (compared case-insensitively)."""

PERMISSION_DENIED = 50021
"""[C] ``ErrorCode`` of a call the user may not make."""

SESSION_ERROR_CODES: tuple[int, ...] = (50001, 50002, 50003)
"""[I] ``ErrorCode`` values taken as "the session expired or is invalid" (the real ones are
unknown); the connection option ``session_error_codes`` overrides them."""

SESSION_MESSAGE = re.compile(
    r"(?i)session|expired|not\s+(logged|authori[sz]ed|authenticated)|unauthori[sz]ed"
    r"|log\s*in\s+again|re-?authenticate"
)
"""[I] A ``Message`` that says the session is no longer good, whatever its code."""

FEED_PARAMS: tuple[tuple[str, str], ...] = (("IncludeInputOutputs", "True"),)
"""[C] Fixed query parameters of ``Data/PositionsList``."""

SPEED_FACTORS: dict[str, float] = {
    "kph": 1.0,
    "km/h": 1.0,
    "kmh": 1.0,
    "kmph": 1.0,
    "kph.": 1.0,
    "mph": 1.609344,
    "knots": 1.852,
    "knot": 1.852,
    "kn": 1.852,
    "kt": 1.852,
    "kts": 1.852,
}
"""``SpeedMeasure`` (lower-cased, stripped) to the factor that gives km/h."""

DEFAULT_SPEED_MEASURE = "kph"
"""[I] A record without a ``SpeedMeasure`` is taken to be in km/h."""

ODOMETER_KM_PER_UNIT = 1.0
"""[I] ``Odometer`` (and ``OdometerDetails.Reading``) read as kilometres: the readings seen
(152334.6 on a truck) fit km, not metres or miles."""

ENGINE_HOURS_PER_UNIT = 1.0 / 3600.0
"""[I] ``EngineTime`` read as seconds of engine time."""

VALID_KEYS = ("Valid", "IsValid", "GPSValid", "GpsValid")
"""[I] Fields a record may carry to say whether its GPS fix is valid (none was seen in
public clients; a record without one is valid unless it sits at exactly 0,0)."""

SATELLITE_SENSOR_TYPE = "satellite count"
"""[C] ``SensorType`` (lower-cased) of the reading that holds the satellite count."""

GENERIC_SENSOR_TYPES = frozenset(
    {
        "",
        "custom",
        "other",
        "generic",
        "unknown",
        "none",
        "user defined",
        "sensor",
        "input",
        "digital input",
        "analog input",
        "analogue input",
    }
)
"""[I] ``SensorType`` values (lower-cased) that say nothing about what is measured: such a
reading is keyed by its ``Name`` (which the user gives per unit) instead of its type."""

SIGN_KEYS: dict[str, str] = {"%": "pct", "°c": "c", "℃": "c", "°f": "f", "℉": "f"}
"""``MeasurementSign`` (lower-cased) to the suffix of a numeric reading's key where the
plain slug would not do (``%`` has none); any other sign is slugged (``V`` -> ``v``)."""

READING_UTC_KEYS = ("ReadingTimeUtc", "ReadingTimeUTC")
"""[I] Spellings of a reading's UTC time; without one, ``ReadingTimeLocal`` [C] is used,
made UTC by the account's offset learned from the position records."""

LOCAL_OFFSET_STEP_S = 900
"""An account's local time differs from UTC by whole quarter hours: a learned offset is
rounded to this."""

PLATE = re.compile(r"^(?=.*\d)(?=.*[A-Z])[A-Z0-9][A-Z0-9 .\-]{1,10}[A-Z0-9]$")
"""[I] ``Information`` holding this (upper-case letters and digits, both present, 3..12
characters) is taken as the licence plate; anything else is free text."""

LATEST_TIME_FORMAT = "%d %b %Y %H:%M:%S"
"""[C] ``LastDateReceivedUtc`` of ``LatestPositionsList``: ``21 May 2013 18:14:56``."""
