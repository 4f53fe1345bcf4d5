"""Constants of the Wialon Remote API: paths, service names, flags and error codes.

Shared by the client (what we send and how we read the answer) and the fake server in
:mod:`gpshub_wialon.testing` (what it emulates).
"""

from __future__ import annotations

DEFAULT_SERVER = "https://hst-api.wialon.com"
AJAX_PATH = "/wialon/ajax.html"
EVENTS_PATH = "/avl_evts"

# -- services -----------------------------------------------------------------------------
LOGIN = "token/login"
LOGOUT = "core/logout"
SEARCH_ITEMS = "core/search_items"
SEARCH_ITEM = "core/search_item"
BATCH = "core/batch"
UPDATE_DATA_FLAGS = "core/update_data_flags"
LOAD_INTERVAL = "messages/load_interval"
LOAD_LAST = "messages/load_last"
GET_MESSAGES = "messages/get_messages"
UNLOAD = "messages/unload"

HEAVY_SERVICES = frozenset({LOAD_INTERVAL, LOAD_LAST})
"""Resource-intensive requests: at most 3 run at once in one session."""

# -- token/login response flags (``fl``) ---------------------------------------------------
LOGIN_BASIC = 0x1
LOGIN_USER = 0x2

# -- unit data flags (core/search_items ``flags``) -----------------------------------------
UNIT_BASE = 0x1
UNIT_CUSTOM_PROPS = 0x2
UNIT_CUSTOM_FIELDS = 0x8
UNIT_ADVANCED = 0x100
"""``uid`` (IMEI / unique id), ``uid2``, ``hw``, ``ph``, ``ph2``, ``psw``."""
UNIT_LAST_MESSAGE = 0x400
"""``pos`` and ``lmsg``."""
UNIT_SENSORS = 0x1000
"""``sens``: the unit's sensors (name, type, parameter expression, calculation table...)."""
UNIT_PROFILE = 0x800000
"""``pflds`` (registration plate, brand, model...) and ``pfldsmax``."""
UNIT_FLAGS = UNIT_BASE | UNIT_ADVANCED | UNIT_LAST_MESSAGE | UNIT_SENSORS | UNIT_PROFILE
"""8393985: name, IMEI, last message, sensors and profile fields in one search."""

PLATE_FIELD = "registration_plate"
"""The profile field (``pflds[*].n``) holding the licence plate."""

# -- message flags -------------------------------------------------------------------------
MSG_TYPE_MASK = 0xFF00
MSG_DATA = 0x0000
MSG_SMS = 0x0100
MSG_USER_LOG = 0x0400
MSG_POSITION = 0x1
MSG_INPUTS = 0x2
MSG_OUTPUTS = 0x4
MSG_LBS = 0x20000
"""The position was corrected by LBS (cell towers): not a satellite fix."""
MSG_WIFI = 0x80000
"""The position comes from Wi-Fi: not a satellite fix."""
POSITION_FLAGS = MSG_DATA | MSG_POSITION
POSITION_MASK = MSG_TYPE_MASK | MSG_POSITION
"""``flags=1, flagsMask=65281``: data messages with a position."""

# -- error codes ---------------------------------------------------------------------------
ERR_OK = 0
ERR_INVALID_SESSION = 1
ERR_INVALID_SERVICE = 2
ERR_INVALID_RESULT = 3
ERR_INVALID_INPUT = 4
ERR_PERFORMING = 5
ERR_UNKNOWN = 6
"""Also what a whole ``core/batch`` answers when it holds too many requests."""
ERR_ACCESS_DENIED = 7
ERR_BAD_LOGIN = 8
ERR_AUTH_SERVER = 9
ERR_CONCURRENT = 10
ERR_NO_MESSAGES = 1001
ERR_ONE_REQUEST = 1003
ERR_SESSION_IP = 1011

ERROR_TEXT: dict[int, str] = {
    ERR_INVALID_SESSION: "invalid session",
    ERR_INVALID_SERVICE: "invalid service name",
    ERR_INVALID_RESULT: "invalid result",
    ERR_INVALID_INPUT: "invalid input",
    ERR_PERFORMING: "error performing request",
    ERR_UNKNOWN: "unknown error",
    ERR_ACCESS_DENIED: "access denied",
    ERR_BAD_LOGIN: "invalid user name or password",
    ERR_AUTH_SERVER: "authorization server is unavailable",
    ERR_CONCURRENT: "reached limit of concurrent requests",
    ERR_NO_MESSAGES: "no messages for selected interval",
    ERR_ONE_REQUEST: "only one request is allowed at the moment",
    ERR_SESSION_IP: "session IP changed or session expired",
}

SESSION_ERRORS = frozenset({ERR_INVALID_SESSION, ERR_SESSION_IP})
"""The session is gone: log in again once and repeat the request."""
RATE_ERRORS = frozenset({ERR_ONE_REQUEST, ERR_CONCURRENT})


def describe_error(code: int, reason: object = None) -> str:
    """``error 1003 (only one request ...: LIMIT api_concurrent)``."""
    text = ERROR_TEXT.get(code, "unknown error code")
    if isinstance(reason, str) and reason:
        text = f"{text}: {reason[:100]}"
    return f"error {code} ({text})"
