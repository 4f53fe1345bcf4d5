// The history's period: presets (today, yesterday, last 24 h, last 7 days) and a custom
// from/to, as the `from` and `to` the API takes. Days and wall-clock times are the
// client's (session.timezone; the browser's for an administrator).
import { session } from "../../session.js";

export const PRESETS = [
  ["today", "Today"],
  ["yesterday", "Yesterday"],
  ["24h", "Last 24 h"],
  ["7d", "Last 7 days"],
  ["custom", "Custom"],
];
export const STOPS_MAX_DAYS = 31; // GET /api/devices/{id}/stops refuses longer ranges

function zoneParts(ms, zone) {
  const opts = { timeZone: zone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" };
  let parts;
  try {
    parts = new Intl.DateTimeFormat("en-US", opts).formatToParts(new Date(ms));
  } catch {
    parts = new Intl.DateTimeFormat("en-US", { ...opts, timeZone: undefined }).formatToParts(new Date(ms));
  }
  const get = (t) => Number(parts.find((p) => p.type === t).value);
  return { y: get("year"), mo: get("month"), d: get("day"), h: get("hour"), mi: get("minute"), s: get("second") };
}

/** The zone's offset from UTC at the instant `ms`, in ms. */
function offset(ms, zone) {
  const p = zoneParts(ms, zone);
  return Date.UTC(p.y, p.mo - 1, p.d, p.h, p.mi, p.s) - Math.floor(ms / 1000) * 1000;
}

/** "2026-03-01" of the day `ms` falls on in the client's zone, shifted by `days`. */
export function day(ms, days = 0) {
  const p = zoneParts(ms, session.timezone);
  return new Date(Date.UTC(p.y, p.mo - 1, p.d + days)).toISOString().slice(0, 10);
}

/** The instant (ms) of a wall-clock "2026-03-01T08:00" in the client's zone. */
export function wallToMs(text) {
  const [date, time = "00:00"] = text.split("T");
  const [y, mo, d] = date.split("-").map(Number);
  const [hh, mm, ss = 0] = time.split(":").map(Number);
  const wall = Date.UTC(y, mo - 1, d, hh, mm, ss);
  let ms = wall - offset(wall, session.timezone);
  ms = wall - offset(ms, session.timezone); // again, across a change of offset
  return ms;
}

/** "2026-03-01T08:00" of the instant `ms` in the client's zone (a datetime-local value). */
export function msToWall(ms) {
  const p = zoneParts(ms, session.timezone);
  const two = (n) => String(n).padStart(2, "0");
  return `${p.y}-${two(p.mo)}-${two(p.d)}T${two(p.h)}:${two(p.mi)}`;
}

/** {from, to, startMs, endMs}: `from`/`to` as the API takes them (instants, so that the
 * API need not know which zone the page used), and the same as ms. null: incomplete. */
export function resolvePeriod(preset, custom = {}, now = Date.now()) {
  const midnight = (date) => wallToMs(`${date}T00:00`);
  switch (preset) {
    case "today":
      return instants(midnight(day(now)), midnight(day(now, 1)));
    case "yesterday":
      return instants(midnight(day(now, -1)), midnight(day(now)));
    case "7d":
      return instants(now - 7 * 86400e3, now);
    case "custom":
      if (!custom.from || !custom.to) return null;
      return instants(wallToMs(custom.from), wallToMs(custom.to));
    default: // 24h
      return instants(now - 86400e3, now);
  }
}

function instants(startMs, endMs) {
  const iso = (ms) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
  return { from: iso(startMs), to: iso(endMs), startMs, endMs };
}
