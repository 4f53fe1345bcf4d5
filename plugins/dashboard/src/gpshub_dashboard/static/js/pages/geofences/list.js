// The list beside the map: name, kind, groups; a group filter (the map shows the same).
import { h } from "../../dom.js";
import { KINDS, kindOf } from "./shapes.js";

export class GeofenceList {
  /** `onPick(id)`: a geofence clicked; `onFilter()`: the group filter changed;
   * `onDeleteGroup(id, name)` (managers only): the group chosen in the filter deleted. */
  constructor(el, { onPick, onFilter, onDeleteGroup = null }) {
    this.onPick = onPick;
    this.filter = h("select#gf-group-filter", {
      "aria-label": "Group",
      onchange: () => {
        this.syncDelete();
        onFilter();
      },
    });
    this.deleteGroup = onDeleteGroup
      ? h("button.delete#gf-group-delete", { type: "button", hidden: true, onclick: () => onDeleteGroup(Number(this.filter.value), this.groups.get(Number(this.filter.value))) }, "Delete group")
      : null;
    this.items = h("ul.gf-list#gf-list");
    this.empty = h("p.empty#gf-empty", { hidden: true }, "No geofence yet.");
    el.append(h("div.gf-filter", h("label", { for: "gf-group-filter" }, "Group"), this.filter, this.deleteGroup), this.items, this.empty);
    this.groups = new Map();
    this.selected = null;
  }

  /** Whether `feature` passes the group filter. */
  shows(feature) {
    const want = this.filter.value;
    const ids = feature.properties.group_ids || [];
    if (want === "") return true;
    if (want === "none") return ids.length === 0;
    return ids.includes(Number(want));
  }

  render(features, groups) {
    this.groups = new Map(groups.map((g) => [g.id, g.name]));
    const keep = this.filter.value;
    this.filter.replaceChildren(
      h("option", { value: "" }, "All groups"),
      ...groups.map((g) => h("option", { value: g.id }, g.name)),
      h("option", { value: "none" }, "No group"),
    );
    this.filter.value = [...this.filter.options].some((o) => o.value === keep) ? keep : "";
    this.syncDelete();
    const shown = features.filter((f) => this.shows(f)).sort((a, b) => (a.properties.name || "").localeCompare(b.properties.name || ""));
    this.items.replaceChildren(...shown.map((f) => this.item(f)));
    this.empty.textContent = features.length ? "No geofence in this group." : "No geofence yet.";
    this.empty.hidden = shown.length > 0;
    this.select(this.selected);
  }

  /** "Delete group" is offered while one group is chosen. */
  syncDelete() {
    if (this.deleteGroup) this.deleteGroup.hidden = !this.groups.has(Number(this.filter.value));
  }

  item(feature) {
    const p = feature.properties;
    const kind = kindOf(feature);
    const size = kind === "circle" ? ` · ${Math.round(p.radius_m)} m` : kind === "corridor" ? ` · ${Math.round(p.width_m)} m wide` : "";
    const groups = (p.group_ids || []).map((id) => this.groups.get(id) || `#${id}`);
    return h(
      "li.gf-item",
      { dataset: { id: feature.id, kind } },
      h(
        "button.gf-pick",
        { type: "button", onclick: () => this.onPick(feature.id) },
        h("span.gf-name", p.name || `#${feature.id}`),
        h("span.gf-kind", KINDS[kind] + size),
        groups.length ? h("span.gf-item-groups", groups.join(", ")) : null,
      ),
    );
  }

  select(id) {
    this.selected = id;
    for (const li of this.items.children) li.classList.toggle("selected", Number(li.dataset.id) === id);
  }
}
