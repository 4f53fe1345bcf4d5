// A device's status on the map: moving, stopped, ignition_off, offline (or no_data).
// Offline is the hub's word (the device's `status`, kept current by the live feed's
// device_status messages: silent longer than its offline timeout); otherwise a
// position is moving from `moving_kmh` (config.status), ignition_off when its ignition
// is off, stopped otherwise. Where /api/devices/latest states one of these itself,
// that is used.
import { config } from "./config.js";

export const STATUSES = ["moving", "stopped", "ignition_off", "offline", "no_data"];
export const LABELS = {
  moving: "Moving",
  stopped: "Stopped",
  ignition_off: "Ignition off",
  offline: "Offline",
  no_data: "No data",
};

export function statusOf(position, device) {
  if (device && device.status === "offline") return "offline";
  if (!position) return "no_data";
  const movingKmh = (config.status && config.status.moving_kmh) ?? 3;
  if ((position.speed_kmh || 0) >= movingKmh) return "moving";
  if (position.ignition === false) return "ignition_off";
  return "stopped";
}
