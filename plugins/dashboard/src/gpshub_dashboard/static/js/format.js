// Dates in the client's time zone (session.timezone), durations, numbers.
import { session } from "./session.js";

const formats = new Map();
function formatter(options) {
  const key = `${session.timezone}|${JSON.stringify(options)}`;
  if (!formats.has(key)) {
    try {
      formats.set(key, new Intl.DateTimeFormat(undefined, { timeZone: session.timezone, ...options }));
    } catch {
      formats.set(key, new Intl.DateTimeFormat(undefined, options)); // an unknown zone
    }
  }
  return formats.get(key);
}

export function dateTime(value) {
  if (!value) return "—";
  return formatter({ dateStyle: "medium", timeStyle: "medium" }).format(new Date(value));
}

/** "12 s ago", "5 min ago", "3 h ago", "2 d ago". */
export function ago(value, now = Date.now()) {
  if (!value) return "never";
  const s = Math.max(0, Math.round((now - new Date(value).getTime()) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

export function number(value, digits = 0, unit = "") {
  if (value === null || value === undefined) return "—";
  return value.toLocaleString(undefined, { maximumFractionDigits: digits }) + (unit ? ` ${unit}` : "");
}

export function yesNo(value) {
  return value === null || value === undefined ? "—" : value ? "on" : "off";
}
