// History: a device and a period → its track on the map with the stops marked, a time
// slider to play it back, a speed chart, the trips and stops, and the downloads.
// The URL holds the choice: #/history?device=7&period=24h (or period=custom&from=&to=,
// wall-clock times in the client's zone).
import { api } from "../api.js";
import { h, notice } from "../dom.js";
import { dateTime, number } from "../format.js";
import { stylesheet } from "../lib.js";
import { baseMap } from "../map/base.js";
import { SpeedChart, chartUnavailable } from "./history/chart.js";
import { CAP, downloadUrl, loadStops, loadTrack } from "./history/data.js";
import { PRESETS, STOPS_MAX_DAYS, msToWall, resolvePeriod } from "./history/period.js";
import { Player } from "./history/player.js";
import { TrackLayer, duration } from "./history/track.js";

export const title = "History";

export function mount(view, ctx) {
  const styles = stylesheet("js/pages/history/history.css");
  const params = ctx.params || {};
  const preset = PRESETS.some(([p]) => p === params.period) ? params.period : "24h";
  let closed = false;
  let player = null;
  let chart = null;

  const deviceSelect = h("select#history-device", { "aria-label": "Device" }, h("option", { value: "" }, "Loading devices…"));
  const presetSelect = h("select#history-period", { "aria-label": "Period" }, PRESETS.map(([value, label]) => h("option", { value, selected: value === preset }, label)));
  const now = Date.now();
  const fromInput = h("input#history-from", { type: "datetime-local", "aria-label": "From", value: params.from || msToWall(now - 86400e3) });
  const toInput = h("input#history-to", { type: "datetime-local", "aria-label": "To", value: params.to || msToWall(now) });
  const apply = h("button.primary#history-apply", { type: "submit" }, "Show");
  const custom = h("span.custom", { hidden: preset !== "custom" }, fromInput, toInput);
  const form = h("form.history-form", deviceSelect, presetSelect, custom, apply);
  const reload = () => {
    const next = { device: deviceSelect.value, period: presetSelect.value };
    if (next.period === "custom") Object.assign(next, { from: fromInput.value, to: toInput.value });
    ctx.go("history", next);
  };
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    reload();
  });
  deviceSelect.addEventListener("change", reload);
  presetSelect.addEventListener("change", () => {
    custom.hidden = presetSelect.value !== "custom";
    if (presetSelect.value !== "custom") reload();
  });

  const mapEl = h("div.map#history-map", { role: "application", "aria-label": "Map of the track" });
  const status = h("p.history-status#history-status", "Loading…");
  const side = h("aside.history-side", status);
  const playerEl = h("div.history-player");
  const chartEl = h("div.history-chart#speed-chart");
  view.classList.add("history-page");
  view.append(form, h("div.history-map-wrap", mapEl), side, h("div.history-bottom", playerEl, chartEl));

  let map = null;
  let resized = null;
  let layer = null;
  if (window.L) {
    map = baseMap(mapEl);
    view.mapInstance = map;
    resized = new ResizeObserver(() => {
      map.invalidateSize();
      // a new layout (a phone turned): keep the whole track in view
      if (layer && !map.getBounds().contains(layer.group.getBounds())) layer.fit();
    });
    resized.observe(mapEl);
  } else {
    mapEl.append(h("p.empty", "No map library (run make vendor)."));
  }

  (async () => {
    const [{ devices }, settings] = await Promise.all([
      api.get("/api/devices"),
      api.get("/api/dashboard-settings").catch(() => ({})),
      styles,
    ]);
    const stopsMaxDays = settings.stops_max_days || STOPS_MAX_DAYS;
    if (closed) return;
    if (map) map.invalidateSize(); // laid out now
    devices.sort((a, b) => a.name.localeCompare(b.name));
    deviceSelect.replaceChildren(...devices.map((d) => h("option", { value: d.id }, d.license_plate ? `${d.name} (${d.license_plate})` : d.name)));
    if (!devices.length) {
      status.textContent = "You have no device.";
      return;
    }
    const device = devices.find((d) => String(d.id) === params.device) || devices[0];
    deviceSelect.value = String(device.id);
    const period = resolvePeriod(preset, { from: fromInput.value, to: toInput.value });
    if (!period || !(period.endMs > period.startMs)) {
      status.textContent = "Choose a “from” before the “to”.";
      status.classList.add("error");
      return;
    }
    side.append(downloads(device.id, period));
    status.textContent = `${device.name}: loading the positions of ${dateTime(period.startMs)} – ${dateTime(period.endMs)}…`;
    const stopsWanted = period.endMs - period.startMs <= stopsMaxDays * 86400e3;
    const [track, stops] = await Promise.all([
      loadTrack(device.id, period, {
        isClosed: () => closed,
        onProgress: (n) => (status.textContent = `${device.name}: ${number(n)} positions loaded…`),
      }),
      stopsWanted ? loadStops(device.id, period).catch((error) => ({ error })) : null,
    ]);
    if (closed || !track) return;
    const { points, capped } = track;
    if (!points.t.length) {
      status.textContent = `${device.name}: no position between ${dateTime(period.startMs)} and ${dateTime(period.endMs)}.`;
      document.body.dataset.historyReady = "1";
      return;
    }
    const summary = [`${device.name}: ${number(points.t.length)} positions, ${dateTime(points.t[0])} – ${dateTime(points.t[points.t.length - 1])}`];
    if (capped) summary.push(`only the first ${number(CAP)} are shown: download the period for all, or choose a shorter one.`);
    status.textContent = summary.join("; ");
    status.classList.toggle("capped", capped);

    layer = map ? new TrackLayer(map) : null;
    if (layer) layer.draw(points);
    if (stops && !stops.error && layer) layer.drawStops(stops.stops);
    side.append(tripsAndStops(stops, stopsWanted ? 0 : stopsMaxDays, layer, (ms) => player.seek(ms)));
    if (layer) layer.fit();

    player = new Player(points, (t, at, source) => {
      if (layer) layer.move(at.lat, at.lon, at.course);
      if (chart && source !== "chart") chart.show(t, at.index);
    });
    playerEl.append(player.root);
    chart = new SpeedChart(chartEl, points, (t) => {
      if (!player.playing) player.seek(t, "chart");
    });
    player.seek(player.start);
    chart.draw().catch((error) => chartUnavailable(chartEl, error));
    document.body.dataset.historyReady = "1";
  })().catch((error) => {
    if (closed || error.status === 401) return;
    status.textContent = `Could not load the history: ${error.message || error}`;
    status.classList.add("error");
    notice(`Could not load the history: ${error.message || error}`, "error");
  });

  return () => {
    closed = true;
    if (player) player.close();
    if (chart) chart.close();
    if (resized) resized.disconnect();
    if (map) map.remove();
    delete document.body.dataset.historyReady;
    view.classList.remove("history-page");
  };
}

function downloads(deviceId, period) {
  const link = (format, label) => h("a.button.download", { href: downloadUrl(deviceId, period, format), download: "", dataset: { format } }, label);
  return h("section.downloads#history-downloads", h("h3", "Download"), h("div.actions", link("csv", "CSV"), link("geojson", "GeoJSON"), link("gpx", "GPX")));
}

/** The trips and stops in time order; `tooLong`: the most days the API takes, when the
 * period is longer (no stops were asked for), else 0. */
function tripsAndStops(answer, tooLong, layer, seek) {
  const section = h("section.trips#history-trips");
  if (tooLong) return h("p.empty#history-trips", `Stops and trips are shown for periods of up to ${tooLong} days.`);
  if (!answer) return section;
  if (answer.error) return h("p.error", `No stops: ${answer.error.message}`);
  const items = [
    ...answer.trips.map((trip) => ({ kind: "trip", at: trip.start, trip })),
    ...answer.stops.map((stop, i) => ({ kind: "stop", at: stop.start, stop, i })),
  ].sort((a, b) => Date.parse(a.at) - Date.parse(b.at));
  const total = answer.trips.reduce((sum, t) => sum + t.distance_km, 0);
  section.append(h("h3", `${answer.trips.length} trips, ${number(total, 1, "km")}; ${answer.stops.length} stops`));
  const list = h("ol.timeline");
  for (const item of items) {
    if (item.kind === "trip") {
      const t = item.trip;
      list.append(
        h(
          "li.trip",
          { tabindex: 0, onclick: () => seek(Date.parse(t.start)) },
          h("strong", "Trip"),
          ` ${dateTime(t.start)} · ${duration(t.duration_s)}`,
          h("br"),
          `${number(t.distance_km, 1, "km")} · max ${number(t.max_speed_kmh, 0, "km/h")}`,
        ),
      );
    } else {
      const s = item.stop;
      list.append(
        h(
          "li.stop",
          { tabindex: 0, dataset: { stop: item.i }, onclick: () => {
              seek(Date.parse(s.start));
              if (layer) layer.openStop(item.i);
            },
          },
          h("strong", `Stop ${item.i + 1}`),
          ` ${dateTime(s.start)} · ${duration(s.duration_s)}`,
          s.place ? [h("br"), s.place] : null,
        ),
      );
    }
  }
  list.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && e.target.matches("li")) e.target.click();
  });
  section.append(list);
  return section;
}
