"""The arguments of ``gpshub device|geofence|rule|sink|alert`` (and ``devices``).

Only the parser lives here: ``gpshub --help`` lists these commands without importing
what they run on (the store, the API's models).  Each command's code is in
``hub.cli_objects``, imported when the command runs.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from hub.remote_ids import REMOTE_ID_RULE


def _command(name: str) -> Callable[[argparse.Namespace], Any]:
    """``hub.cli_objects.<name>``, imported when the command runs."""

    def run(args: argparse.Namespace) -> Any:
        from hub import cli_objects

        return getattr(cli_objects, name)(args)

    run.__name__ = run.__qualname__ = name
    return run


def _client_option(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--client", help=f"client name or id ({what})")


def _list_command(
    group: Any, help: str, json_help: str, func: Callable[[argparse.Namespace], Any]
) -> argparse.ArgumentParser:
    """A ``list`` action: every client's objects, or one's with ``--client``; ``--json``."""
    p: argparse.ArgumentParser = group.add_parser("list", help=help)
    _client_option(p, "default: every client's")
    p.add_argument("--json", action="store_true", help=f"machine output: {json_help}")
    p.set_defaults(func=func)
    return p


def _device_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--license-plate", metavar="PLATE")
    p.add_argument("--imei")
    p.add_argument("--remote-id", help=f"unique per client; {REMOTE_ID_RULE} (e.g. van-7)")
    p.add_argument(
        "--tag", action="append", help="a tag (repeatable; together they replace the tags)"
    )
    p.add_argument("--driver")
    p.add_argument("--connection-id", metavar="ID", help="the connection that reports it")
    p.add_argument("--upstream-id", metavar="ID", help="its id on that connection's platform")
    p.add_argument(
        "--offline-timeout-s", metavar="S", help="seconds of silence before offline (≥ 30)"
    )
    p.add_argument(
        "--odometer-source", metavar="hub|platform", help="where the system odometer comes from"
    )
    p.add_argument(
        "--hours-source", metavar="hub|platform", help="where the system hour meter comes from"
    )


def register(sub: Any) -> None:
    """Add the commands to the ``gpshub`` parser's subcommands."""
    device = sub.add_parser("device", help="devices (vehicles) of a client").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    s = device.add_parser(
        "add", help="create a device", description="Create a device, checked as the API does."
    )
    s.add_argument("name", help="the device's name")
    _client_option(s, "optional when there is one")
    _device_options(s)
    s.set_defaults(func=_command("cmd_device_add"))
    s = _list_command(
        device,
        "list devices with their latest position",
        "the API's devices",
        _command("cmd_device_list"),
    )
    s.add_argument("--connection-id", type=int, metavar="ID", help="only this connection's")
    s = device.add_parser(
        "edit",
        help="change a device",
        description="Change the fields given; --clear FIELD empties an optional one.",
    )
    s.add_argument("id", type=int, help="device id")
    s.add_argument("--name")
    _client_option(s, "optional: make sure the device is this client's")
    _device_options(s)
    s.add_argument(
        "--clear",
        action="append",
        default=[],
        metavar="FIELD",
        help="empty a field, e.g. --clear license_plate (repeatable)",
    )
    s.set_defaults(func=_command("cmd_device_edit"))
    s = device.add_parser("remove", help="delete a device and its positions")
    s.add_argument("id", type=int, help="device id")
    _client_option(s, "optional: make sure the device is this client's")
    s.set_defaults(func=_command("cmd_device_remove"))

    geo = sub.add_parser("geofence", help="geofences (POIs) of a client").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    s = geo.add_parser(
        "import",
        help="create geofences from GeoJSON (all or nothing)",
        description="Create geofences from a GeoJSON FeatureCollection (as POST "
        "/api/geofences/import) or one Feature (as POST /api/geofences): a Point with "
        "properties.radius_m (circle), a Polygon, or a LineString with properties.width_m "
        "(corridor); properties also carry name, contact and group_ids.  Nothing is "
        "stored when any feature is refused.",
    )
    s.add_argument("file", help="a GeoJSON file, or - for standard input")
    _client_option(s, "optional when there is one or the file names client_id")
    s.set_defaults(func=_command("cmd_geofence_import"))
    _list_command(geo, "list geofences", "a FeatureCollection", _command("cmd_geofence_list"))

    rule = sub.add_parser("rule", help="alert rules of a client").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    s = rule.add_parser(
        "add",
        help="create an alert rule from JSON",
        description="Create an alert rule from a JSON object, the body of POST /api/rules, "
        'e.g. {"name": "Speeding", "type": "overspeed", "params": {"limit_kmh": 90}}.',
    )
    s.add_argument("file", help="a JSON file, or - for standard input")
    _client_option(s, "optional when there is one or the body names client_id")
    s.add_argument(
        "--owner",
        metavar="USER",
        help="the rule's owner: an administrator or a manager of the client "
        "(default: the first administrator)",
    )
    s.set_defaults(func=_command("cmd_rule_add"))
    _list_command(rule, "list alert rules", "the API's rules", _command("cmd_rule_list"))

    sink = sub.add_parser(
        "sink", help="webhook delivery targets (location relays, alerts webhooks)"
    ).add_subparsers(dest="action", required=True, metavar="ACTION")
    s = sink.add_parser(
        "add",
        help="create a sink",
        description="Create a sink, checked as POST /api/sinks checks it.  --file gives a "
        "whole request body; the other options set or override its fields.  VALUE=@file "
        "reads a value from a file, @- from standard input (keep header secrets out of "
        "your shell's history).",
    )
    _client_option(s, "optional when there is one")
    s.add_argument("--name")
    s.add_argument("--kind", help="a sink kind, e.g. webhook, startrack-relay")
    s.add_argument("--format", help="one of the kind's formats (default: its own)")
    s.add_argument("--url", help="the receiver's URL (settings.url)")
    s.add_argument("--setting", action="append", default=[], metavar="KEY=VALUE")
    s.add_argument(
        "--option", action="append", default=[], metavar="KEY=VALUE", help="a format option"
    )
    s.add_argument(
        "--header", action="append", default=[], metavar="NAME=VALUE", help="a custom header"
    )
    s.add_argument(
        "--signing", action="store_true", help="sign requests (the secret is shown once)"
    )
    s.add_argument("--disabled", action="store_true", help="save it without delivering yet")
    s.add_argument("--failing-after-s", metavar="S")
    s.add_argument("--file", help="a JSON request body, or - for standard input")
    s.set_defaults(func=_command("cmd_sink_add"))
    _list_command(
        sink, "list sinks with their state and counts", "the API's sinks", _command("cmd_sink_list")
    )
    s = sink.add_parser(
        "test",
        help="send a sample payload to a sink's receiver",
        description="POST one sample location or alert, in the sink's format and with its "
        "headers and signature, to its receiver, and tell what it answered.  Nothing is "
        "queued or counted.  Exit status 0 when it was accepted (2xx), 1 otherwise.",
    )
    s.add_argument("id", type=int, help="sink id")
    _client_option(s, "optional: make sure the sink is this client's")
    s.add_argument("--show-body", action="store_true", help="print the body sent")
    s.set_defaults(func=_command("cmd_sink_test"))

    alert = sub.add_parser("alert", help="alerts the rules raised").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    s = alert.add_parser(
        "list",
        help="list alerts, oldest first",
        description="List alerts in the order they were raised; page with --after-id.",
    )
    _client_option(s, "default: every client's")
    s.add_argument("--device-id", metavar="ID")
    s.add_argument("--rule-id", metavar="ID")
    s.add_argument("--from", dest="start", help="fix time, ISO 8601 with an offset (inclusive)")
    s.add_argument("--to", dest="end", help="fix time, ISO 8601 with an offset (exclusive)")
    s.add_argument("--after-id", metavar="ID", help="only alerts after this one")
    s.add_argument("--limit", metavar="N", help="at most N alerts (default 1000)")
    s.add_argument("--json", action="store_true", help="machine output: the API's alerts")
    s.set_defaults(func=_command("cmd_alert_list"))

    s = sub.add_parser("devices", help="the same as: device list")
    _client_option(s, "default: every client's")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=_command("cmd_device_list"))


__all__ = ["register"]
