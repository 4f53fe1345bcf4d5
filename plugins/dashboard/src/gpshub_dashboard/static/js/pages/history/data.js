// The history's data: every page of GET /api/devices/{id}/positions up to a cap, and the
// stops and trips of GET /api/devices/{id}/stops.
import { api, query } from "../../api.js";

export const CAP = 50_000; // points drawn at most; the downloads have them all
const PAGE = 10_000; // the API's largest page

/** {points, capped}: the positions of [from, to) in fix-time order, as compact arrays. */
export async function loadTrack(deviceId, period, { isClosed = () => false, onProgress = () => {} } = {}) {
  const points = { t: [], lat: [], lon: [], speed: [], course: [] };
  let cursor = null;
  do {
    const limit = Math.min(PAGE, CAP - points.t.length);
    const page = await api.get(`/api/devices/${deviceId}/positions${query({ from: period.from, to: period.to, limit, cursor })}`);
    if (isClosed()) return null;
    for (const p of page.positions) {
      if (p.valid === false) continue; // an invalid fix would draw a spike
      points.t.push(Date.parse(p.fix_time));
      points.lat.push(p.lat);
      points.lon.push(p.lon);
      points.speed.push(p.speed_kmh ?? null);
      points.course.push(p.course_deg ?? null);
    }
    cursor = page.next_cursor;
    onProgress(points.t.length);
  } while (cursor && points.t.length < CAP);
  return { points, capped: !!cursor };
}

export function loadStops(deviceId, period) {
  return api.get(`/api/devices/${deviceId}/stops${query({ from: period.from, to: period.to })}`);
}

/** The link of a download of the whole period: csv, geojson or gpx. */
export function downloadUrl(deviceId, period, format) {
  return `/api/devices/${deviceId}/positions${query({ format, from: period.from, to: period.to })}`;
}
