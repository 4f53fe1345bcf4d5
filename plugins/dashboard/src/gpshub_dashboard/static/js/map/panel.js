// The panel of the selected device: speed, ignition, satellites, sensors, odometer,
// hour meter, place, geofences, last update; an edit control for those who may write.
import { api } from "../api.js";
import { h } from "../dom.js";
import { ago, dateTime, number, yesNo } from "../format.js";
import { LABELS } from "../status.js";

export class DevicePanel {
  constructor(root, fleet, ctx, onClose) {
    Object.assign(this, { root, fleet, ctx, onClose });
    this.id = null;
    this.geofences = null; // id → name, loaded when first needed
  }

  show(id) {
    this.id = id;
    this.root.hidden = false;
    this.render();
  }

  hide() {
    this.id = null;
    this.root.hidden = true;
    this.root.replaceChildren();
  }

  async geofenceNames(ids) {
    if (!ids || !ids.length) return [];
    if (this.geofences === null) {
      this.geofences = new Map();
      try {
        const answer = await api.get("/api/geofences");
        for (const f of answer.features || []) this.geofences.set(f.id, (f.properties && f.properties.name) || `#${f.id}`);
      } catch {
        /* the panel shows ids */
      }
    }
    return ids.map((g) => this.geofences.get(g) || `#${g}`);
  }

  render() {
    const entry = this.fleet.entries.get(this.id);
    if (!entry) return this.hide();
    const { device, position: p, status } = entry;
    const sensors = p ? Object.entries(p.sensors || {}) : [];
    const odometer = p ? (p.virtual_odometer_km ?? p.odometer_km) : null;
    const hours = p ? (p.virtual_hours ?? p.hours) : null;
    const fences = h("dd.geofences", "—");
    const rows = [
      ["Status", h("span.badge", { dataset: { status } }, LABELS[status])],
      ["Last update", h("span.ago#panel-ago", { dataset: { time: p ? p.fix_time : "" } }, p ? ago(p.fix_time) : "never")],
      ["Fix time", p ? dateTime(p.fix_time) : "—"],
      ["Speed", p ? number(p.speed_kmh, 0, "km/h") : "—"],
      ["Heading", p && p.course_deg !== null ? number(p.course_deg, 0, "°") : "—"],
      ["Ignition", p ? yesNo(p.ignition) : "—"],
      ["Satellites", p ? number(p.satellites) : "—"],
      ["Odometer", number(odometer, 1, "km")],
      ["Hour meter", number(hours, 1, "h")],
      ["Place", (p && p.place) || "—"],
    ];
    const list = h("dl.facts", ...rows.flatMap(([k, v]) => [h("dt", k), h("dd", v)]), h("dt", "Geofences"), fences);
    if (sensors.length) list.append(h("dt", "Sensors"), h("dd", h("ul.sensors", sensors.map(([k, v]) => h("li", `${k}: ${typeof v === "object" ? JSON.stringify(v) : v}`)))));
    const actions = h("div.actions", h("a.button", { href: `#/history?device=${device.id}` }, "History"));
    if (this.ctx.session.can_write) actions.append(h("button.edit#edit-device", { type: "button", onclick: () => this.rename(device) }, "Rename"));
    this.root.replaceChildren(
      h("div.panel-head", h("h2", device.name), h("button.close", { type: "button", "aria-label": "Close", onclick: () => this.onClose() }, "×")),
      device.license_plate ? h("p.plate", device.license_plate) : null,
      list,
      actions,
    );
    if (p && p.poi_ids && p.poi_ids.length) this.geofenceNames(p.poi_ids).then((names) => (fences.textContent = names.join(", ")));
  }

  async rename(device) {
    const name = prompt("New name", device.name);
    if (!name || name === device.name) return;
    try {
      const updated = await api.patch(`/api/devices/${device.id}`, { name });
      this.fleet.entries.get(device.id).device.name = updated.name;
      this.fleet.emit([device.id]);
    } catch (e) {
      alert(e.message);
    }
  }

  tick() {
    const el = this.root.querySelector("#panel-ago");
    if (el && el.dataset.time) el.textContent = ago(el.dataset.time);
  }
}
