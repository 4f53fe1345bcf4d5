// The markers: a heading arrow coloured by status, clustered when there are many
// (Leaflet.markercluster). Each marker's element carries data-device-id, data-status,
// data-lat/lon and data-moved-at (ms since the epoch of its last move: the live latency
// the browser tests measure).
const CLUSTER_FROM = 50;

export class Markers {
  constructor(map, fleet, onSelect) {
    Object.assign(this, { map, fleet, onSelect });
    this.markers = new Map();
    const clusters = typeof L.markerClusterGroup === "function";
    this.layer = clusters
      ? L.markerClusterGroup({ chunkedLoading: true, disableClusteringAtZoom: 17, maxClusterRadius: 50, showCoverageOnHover: false })
      : L.layerGroup();
    if (clusters && fleet.entries.size < CLUSTER_FROM) this.layer.options.disableClusteringAtZoom = 0;
    this.layer.addTo(map);
  }

  update(ids) {
    const fresh = [];
    for (const id of ids) {
      const entry = this.fleet.entries.get(id);
      const position = entry && entry.position;
      let marker = this.markers.get(id);
      if (!position) {
        if (marker) this.layer.removeLayer(marker);
        this.markers.delete(id);
        continue;
      }
      if (!marker) {
        marker = L.marker([position.lat, position.lon], { icon: this.icon(id), title: entry.device.name, keyboard: true });
        marker.on("click", () => this.onSelect(id));
        this.markers.set(id, marker);
        fresh.push(marker);
      } else {
        const at = marker.getLatLng();
        if (at.lat !== position.lat || at.lng !== position.lon) {
          marker.setLatLng([position.lat, position.lon]);
          marker.options.icon.options.html.dataset.movedAt = String(Date.now());
        }
      }
      this.paint(marker.options.icon.options.html, entry);
    }
    if (fresh.length) {
      if (this.layer.addLayers) this.layer.addLayers(fresh);
      else fresh.forEach((m) => this.layer.addLayer(m));
    }
  }

  icon(id) {
    const el = document.createElement("div");
    el.className = "marker";
    el.dataset.deviceId = String(id);
    el.append(Object.assign(document.createElement("span"), { className: "arrow" }));
    return L.divIcon({ html: el, className: "pin-icon", iconSize: [26, 26], iconAnchor: [13, 13] });
  }

  paint(el, entry) {
    const { position, status } = entry;
    el.dataset.status = status;
    el.dataset.lat = String(position.lat);
    el.dataset.lon = String(position.lon);
    el.classList.toggle("has-heading", position.course_deg !== null && position.course_deg !== undefined);
    el.firstChild.style.transform = `rotate(${position.course_deg || 0}deg)`;
  }

  fit() {
    const points = [...this.markers.values()].map((m) => m.getLatLng());
    if (points.length === 1) this.map.setView(points[0], 15);
    else if (points.length) this.map.fitBounds(L.latLngBounds(points), { padding: [30, 30], maxZoom: 15 });
  }

  focus(id) {
    const marker = this.markers.get(id);
    if (!marker) return;
    if (this.layer.zoomToShowLayer) this.layer.zoomToShowLayer(marker, () => {});
    else this.map.panTo(marker.getLatLng());
  }

  /** The element of a device's marker while it is drawn on its own (not in a cluster). */
  element(id) {
    const marker = this.markers.get(id);
    return marker ? marker.options.icon.options.html : null;
  }
}
