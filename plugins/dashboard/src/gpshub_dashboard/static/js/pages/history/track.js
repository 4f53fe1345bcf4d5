// The history on the map: the track as a polyline, a marker per stop (a popup with its
// start, end and duration), and the playback marker that the player moves.
import { h } from "../../dom.js";
import { dateTime, number } from "../../format.js";

export function duration(seconds) {
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min`;
  const hours = Math.floor(m / 60);
  if (hours < 48) return `${hours} h ${m % 60} min`;
  return `${Math.floor(hours / 24)} d ${hours % 24} h`;
}

export class TrackLayer {
  constructor(map) {
    this.map = map;
    this.group = L.featureGroup().addTo(map);
    this.stops = [];
    this.player = null;
  }

  draw(points) {
    const latlngs = points.lat.map((lat, i) => [lat, points.lon[i]]);
    this.line = L.polyline(latlngs, { className: "track-line", weight: 4, opacity: 0.85 }).addTo(this.group);
    const el = document.createElement("div");
    el.className = "playback-marker";
    el.id = "playback-marker";
    el.append(Object.assign(document.createElement("span"), { className: "arrow" }));
    this.playerEl = el;
    this.player = L.marker(latlngs[0], {
      icon: L.divIcon({ html: el, className: "pin-icon", iconSize: [22, 22], iconAnchor: [11, 11] }),
      zIndexOffset: 1000,
      keyboard: false,
      interactive: false,
    }).addTo(this.group);
  }

  drawStops(stops) {
    for (const [i, stop] of stops.entries()) {
      const el = document.createElement("div");
      el.className = "stop-marker";
      el.dataset.stop = String(i);
      el.textContent = "P";
      const marker = L.marker([stop.lat, stop.lon], {
        icon: L.divIcon({ html: el, className: "pin-icon", iconSize: [22, 22], iconAnchor: [11, 11] }),
        title: `Stop ${i + 1}`,
      }).addTo(this.group);
      marker.bindPopup(() => stopPopup(stop, i));
      this.stops.push(marker);
    }
  }

  /** Move the playback marker to [lat, lon], heading `course`. */
  move(lat, lon, course) {
    if (!this.player) return;
    this.player.setLatLng([lat, lon]);
    this.playerEl.dataset.lat = lat.toFixed(6);
    this.playerEl.dataset.lon = lon.toFixed(6);
    this.playerEl.classList.toggle("has-heading", course !== null);
    this.playerEl.firstChild.style.transform = `rotate(${course || 0}deg)`;
  }

  openStop(i) {
    const marker = this.stops[i];
    if (!marker) return;
    this.map.setView(marker.getLatLng(), Math.max(this.map.getZoom(), 15));
    marker.openPopup();
  }

  fit() {
    const bounds = this.group.getBounds();
    if (bounds.isValid()) this.map.fitBounds(bounds, { padding: [30, 30], maxZoom: 16 });
  }
}

function stopPopup(stop, i) {
  return h(
    "div.stop-popup",
    h("strong", `Stop ${i + 1}`),
    h(
      "dl.facts",
      h("dt", "From"),
      h("dd", stop.open_start ? `before ${dateTime(stop.start)}` : dateTime(stop.start)),
      h("dt", "To"),
      h("dd", stop.open_end ? `${dateTime(stop.end)} (still there)` : dateTime(stop.end)),
      h("dt", "Duration"),
      h("dd", duration(stop.duration_s)),
      stop.place ? [h("dt", "Place"), h("dd", stop.place)] : null,
      h("dt", "Fixes"),
      h("dd", number(stop.positions)),
    ),
  );
}
