// The fleet as the map page knows it: one entry per device {device, position, status},
// kept current from the API and the live feed; listeners hear which ids changed.
import { statusOf } from "../status.js";

export class Fleet {
  constructor() {
    this.entries = new Map();
    this.listeners = [];
  }

  onChange(listener) {
    this.listeners.push(listener);
  }

  emit(ids) {
    for (const listener of this.listeners) listener(ids);
  }

  /** From GET /api/devices and GET /api/devices/latest. */
  load(devices, latest) {
    for (const device of devices) this.entries.set(device.id, { device, position: null, status: "no_data" });
    for (const position of latest) {
      const entry = this.entries.get(position.device_id);
      if (!entry) continue;
      entry.position = position;
      if (position.device) entry.device = { ...entry.device, ...position.device };
    }
    for (const entry of this.entries.values()) {
      const stated = entry.position && entry.position.status; // the hub's own word, if it gives one
      entry.status = ["moving", "stopped", "ignition_off", "offline"].includes(stated)
        ? stated
        : statusOf(entry.position, entry.device);
    }
    this.emit([...this.entries.keys()]);
  }

  /** A live message; true if it changed something. */
  apply(message) {
    const entry = this.entries.get(message.device_id);
    if (!entry) return false;
    if (message.type === "position") {
      const old = entry.position;
      if (old && new Date(old.fix_time) > new Date(message.data.fix_time)) return false; // late fix
      entry.position = message.data;
    } else if (message.type === "device_status") {
      entry.device = { ...entry.device, ...message.data };
    } else {
      return false;
    }
    entry.status = statusOf(entry.position, entry.device);
    this.emit([message.device_id]);
    return true;
  }

  /** Statuses again as time passes (a device turns offline by its silence). */
  refresh(now = Date.now()) {
    const changed = [];
    for (const [id, entry] of this.entries) {
      const status = statusOf(entry.position, entry.device, now);
      if (status !== entry.status) {
        entry.status = status;
        changed.push(id);
      }
    }
    if (changed.length) this.emit(changed);
  }

  counts() {
    const counts = { moving: 0, stopped: 0, ignition_off: 0, offline: 0, no_data: 0 };
    for (const entry of this.entries.values()) counts[entry.status] += 1;
    return counts;
  }
}
