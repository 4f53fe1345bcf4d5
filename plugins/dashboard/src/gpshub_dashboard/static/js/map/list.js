// The device list beside the map: search, filters (status, connection, tag), counts by
// status; a click selects the device.
import { h } from "../dom.js";
import { ago } from "../format.js";
import { LABELS, STATUSES } from "../status.js";

export class DeviceList {
  constructor(root, fleet, { connections, onSelect }) {
    Object.assign(this, { fleet, onSelect });
    this.rows = new Map();
    this.filter = { text: "", status: "", connection: "", tag: "" };
    this.search = h("input#device-search", { type: "search", placeholder: "Search devices", "aria-label": "Search devices" });
    this.search.addEventListener("input", () => this.set("text", this.search.value.trim().toLowerCase()));
    this.counts = h("div.counts#status-counts", { role: "group", "aria-label": "Filter by status" });
    this.status = select("status-filter", "Status", STATUSES.map((s) => [s, LABELS[s]]), (v) => this.set("status", v));
    const tags = [...new Set([...fleet.entries.values()].flatMap((e) => e.device.tags || []))].sort();
    this.tag = select("tag-filter", "Tag", tags.map((t) => [t, t]), (v) => this.set("tag", v));
    const conns = [...new Set([...fleet.entries.values()].map((e) => e.device.connection_id))].filter((c) => c !== null);
    const label = (id) => (connections.get(id) ? connections.get(id).label : `#${id}`);
    this.connection = select(
      "connection-filter",
      "Connection",
      [...conns.map((c) => [String(c), label(c)]), ["none", "No connection"]],
      (v) => this.set("connection", v),
    );
    this.list = h("ul.devices#device-list");
    this.empty = h("p.empty", { hidden: true }, "No device matches.");
    root.append(
      this.counts,
      h("div.filters", this.search, this.status, this.connection, this.tag),
      this.list,
      this.empty,
    );
    for (const id of [...fleet.entries.keys()].sort((a, b) => this.name(a).localeCompare(this.name(b)))) {
      const row = h("li.device", { dataset: { id }, tabindex: 0, onclick: () => this.onSelect(id) });
      row.addEventListener("keydown", (e) => e.key === "Enter" && this.onSelect(id));
      this.rows.set(id, row);
      this.list.append(row);
    }
    this.update([...fleet.entries.keys()]);
  }

  name(id) {
    return this.fleet.entries.get(id).device.name;
  }

  set(key, value) {
    this.filter[key] = value;
    if (key === "status") this.status.value = value;
    this.update([...this.fleet.entries.keys()]);
  }

  matches(entry) {
    const { text, status, connection, tag } = this.filter;
    const d = entry.device;
    if (status && entry.status !== status) return false;
    if (tag && !(d.tags || []).includes(tag)) return false;
    if (connection === "none" && d.connection_id !== null) return false;
    if (connection && connection !== "none" && String(d.connection_id) !== connection) return false;
    if (text) {
      const hay = [d.name, d.license_plate, d.driver, d.remote_id, ...(d.tags || [])].filter(Boolean).join(" ").toLowerCase();
      if (!hay.includes(text)) return false;
    }
    return true;
  }

  update(ids) {
    for (const id of ids) {
      const entry = this.fleet.entries.get(id);
      const row = this.rows.get(id);
      if (!entry || !row) continue;
      const p = entry.position;
      row.dataset.status = entry.status;
      row.hidden = !this.matches(entry);
      row.replaceChildren(
        h("span.dot", { "aria-hidden": true }),
        h("span.name", entry.device.name),
        h("span.plate", entry.device.license_plate || ""),
        h("span.state", LABELS[entry.status]),
        h("span.ago", { dataset: { time: p ? p.fix_time : "" } }, p ? ago(p.fix_time) : ""),
      );
    }
    this.empty.hidden = [...this.rows.values()].some((r) => !r.hidden);
    this.renderCounts();
  }

  renderCounts() {
    const counts = this.fleet.counts();
    this.counts.replaceChildren(
      h("button.count", { type: "button", dataset: { status: "" }, "aria-pressed": String(!this.filter.status), onclick: () => this.set("status", "") }, `All ${this.fleet.entries.size}`),
      ...STATUSES.filter((s) => s !== "no_data" || counts.no_data).map((s) =>
        h(
          "button.count",
          { type: "button", dataset: { status: s }, "aria-pressed": String(this.filter.status === s), onclick: () => this.set("status", this.filter.status === s ? "" : s) },
          `${LABELS[s]} ${counts[s]}`,
        ),
      ),
    );
  }

  /** Refresh the "12 s ago" texts. */
  tick() {
    for (const el of this.list.querySelectorAll(".ago[data-time]")) if (el.dataset.time) el.textContent = ago(el.dataset.time);
  }

  select(id) {
    for (const [rid, row] of this.rows) row.classList.toggle("selected", rid === id);
  }
}

function select(id, label, options, onchange) {
  const el = h("select", { id, "aria-label": label }, h("option", { value: "" }, `${label}: all`), ...options.map(([v, t]) => h("option", { value: v }, t)));
  el.addEventListener("change", () => onchange(el.value));
  return el;
}
