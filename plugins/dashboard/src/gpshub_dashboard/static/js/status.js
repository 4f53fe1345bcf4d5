// A device's status on the map: moving, stopped, ignition_off, offline or no_data.
// The hub's rule (hub/map_status.py; /api/devices/latest states it for each device),
// applied again here to live positions and as time passes, first that holds wins:
// no_data without a position; offline when the newest fix is older than the device's
// offline timeout; moving above moving_kmh; ignition_off when the ignition is off;
// stopped otherwise.
import { config } from "./config.js";

export const STATUSES = ["moving", "stopped", "ignition_off", "offline", "no_data"];
export const LABELS = {
  moving: "Moving",
  stopped: "Stopped",
  ignition_off: "Ignition off",
  offline: "Offline",
  no_data: "No data",
};

export function statusOf(position, device, now = Date.now()) {
  if (!position) return "no_data";
  const rule = config.status || {};
  const timeout = (device && device.offline_timeout_s) ?? rule.offline_timeout_s ?? 600;
  if ((now - Date.parse(position.fix_time)) / 1000 > timeout) return "offline";
  const speed = position.speed_kmh;
  if (speed !== null && speed !== undefined && speed > (rule.moving_kmh ?? 5)) return "moving";
  if (position.ignition === false) return "ignition_off";
  return "stopped";
}
