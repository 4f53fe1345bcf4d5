// Geofences: every geofence on the map (circles, polygons, corridors) and a list beside
// it with a group filter. Managers draw new ones (Leaflet-Geoman), name and group them,
// edit (the fields, and the shape on the map), delete, and import a GeoJSON file.
import { api } from "../api.js";
import { h, notice } from "../dom.js";
import { load, stylesheet } from "../lib.js";
import { baseMap } from "../map/base.js";
import { geofenceForm } from "./geofences/form.js";
import { importBox } from "./geofences/importer.js";
import { GeofenceList } from "./geofences/list.js";
import { GeofenceLayer, geometryOf, kindOfShape } from "./geofences/shapes.js";

export const title = "Geofences";

const TOOLS = [
  ["Circle", "Circle", "gf-draw-circle"],
  ["Polygon", "Polygon", "gf-draw-polygon"],
  ["Line", "Corridor", "gf-draw-corridor"],
];

export function mount(view, ctx) {
  const styles = stylesheet("js/pages/geofences/geofences.css");
  const write = ctx.session.can_write;
  const admin = ctx.session.is_admin && !ctx.session.client;
  const mapEl = h("div.map#gf-map", { role: "application", "aria-label": "Map of the geofences" });
  const side = h("aside.gf-side#gf-side");
  const formSlot = h("div.gf-form-slot#gf-form-slot");
  const listEl = h("div.gf-list-box");
  const head = h("div.gf-head", h("h1", "Geofences"));
  side.append(formSlot, listEl);
  view.classList.add("gf-page");
  view.append(head, h("div.gf-map-wrap", mapEl), side);

  let closed = false;
  let map = null;
  let resized = null;
  let features = [];
  let groups = [];
  const layers = new Map(); // id → GeofenceLayer
  let editing = null; // {close()} of the open form
  let selected = null;

  const list = new GeofenceList(listEl, { onPick: (id) => pick(id, true), onFilter: filter, onDeleteGroup: write ? deleteGroup : null });
  const clientSelect = h("select#gf-client", { "aria-label": "Client", onchange: () => editing && editing.close() });
  const drawButtons = TOOLS.map(([shape, label, id]) => h(`button#${id}.gf-tool`, { type: "button", "aria-pressed": "false", onclick: () => startDraw(shape) }, label));
  if (write) {
    head.append(
      h("div.gf-tools#gf-tools", admin ? h("label.gf-client", "Client", clientSelect) : null, h("div.gf-draw", h("span.ar-hint", "Draw:"), drawButtons)),
      importBox({
        body: ownerBody,
        onImported: () => {
          closeForm();
          return refresh();
        },
      }),
    );
  }

  /** What a new geofence or group carries: the administrator's chosen client, or nothing. */
  function ownerBody() {
    if (!admin) return {};
    return clientSelect.value ? { client_id: Number(clientSelect.value) } : null;
  }
  const clientOf = (feature) => (feature ? feature.properties.client_id : admin ? Number(clientSelect.value) : null);
  const groupsOf = (clientId) => (clientId === null ? groups : groups.filter((g) => g.client_id === clientId));

  function render() {
    for (const layer of layers.values()) layer.remove();
    layers.clear();
    if (map) {
      for (const f of features) {
        let layer;
        try {
          layer = new GeofenceLayer(map, f, (id) => pick(id, false));
        } catch (error) {
          console.warn(`geofence ${f.id} cannot be drawn`, error); // listed all the same
          continue;
        }
        layers.set(f.id, layer);
        if (list.shows(f)) layer.layer.addTo(map);
      }
    }
    list.render(features, groups);
    highlight(selected);
  }

  /** The group filter changed: the list and the map show its geofences (the layers
   * stay: one being edited keeps its edits). */
  function filter() {
    list.render(features, groups);
    for (const f of features) {
      const layer = layers.get(f.id);
      if (!layer || !map) continue;
      if (list.shows(f) || (editing && editing.id === f.id)) layer.layer.addTo(map);
      else layer.layer.remove();
    }
  }

  function highlight(id) {
    selected = id;
    list.select(id);
    for (const [key, layer] of layers) layer.select(key === id);
  }

  /** A geofence chosen in the list (`fit`: the map fits it) or on the map. */
  function pick(id, fit) {
    if (map && map.pm && map.pm.globalDrawModeEnabled()) return; // a click drawing over it
    const open = write && !(editing && editing.id === id);
    if (open) closeForm(); // (which draws the layers afresh)
    const layer = layers.get(id);
    if (!layer) return;
    if (fit && map) {
      if (!map.hasLayer(layer.layer)) layer.layer.addTo(map);
      map.fitBounds(layer.bounds(), { padding: [30, 30], maxZoom: 17, animate: false }); // at once: the shape ready to edit
    }
    if (open) openEdit(layer);
    highlight(id);
  }

  async function refresh() {
    const [collection, groupList] = await Promise.all([api.get("/api/geofences"), api.get("/api/geofence-groups")]);
    if (closed) return;
    features = collection.features;
    groups = groupList.groups;
    render();
  }

  async function deleteGroup(id, name) {
    if (!confirm(`Delete the group “${name}”? Its geofences stay.`)) return;
    try {
      await api.del(`/api/geofence-groups/${id}`);
      closeForm();
      await refresh();
    } catch (error) {
      notice(`Could not delete the group: ${error.message}`, "error");
    }
  }

  const createGroup = (clientId) => async (name) => {
    const group = await api.post("/api/geofence-groups", admin ? { name, client_id: clientId } : { name });
    groups = [...groups, group];
    return group;
  };

  function closeForm() {
    if (editing) editing.close();
  }

  // -- drawing a new geofence --------------------------------------------------------
  function stopDraw() {
    if (map && map.pm) map.pm.disableDraw();
    for (const b of drawButtons) b.setAttribute("aria-pressed", "false");
  }

  function startDraw(shape) {
    if (!map || !map.pm) return notice("Drawing needs Leaflet-Geoman (run make vendor).", "error");
    const again = drawButtons[TOOLS.findIndex(([s]) => s === shape)].getAttribute("aria-pressed") === "true";
    closeForm();
    stopDraw();
    if (again) return; // the pressed tool clicked again: stop drawing
    if (admin && !clientSelect.value) return notice("Choose the client first.", "error");
    drawButtons[TOOLS.findIndex(([s]) => s === shape)].setAttribute("aria-pressed", "true");
    map.pm.enableDraw(shape, { continueDrawing: false, finishOn: null });
  }

  function openNew(shape, layer) {
    stopDraw();
    closeForm();
    const kind = kindOfShape(shape);
    const clientId = clientOf(null);
    const form = geofenceForm({
      kind,
      feature: null,
      groups: groupsOf(clientId),
      radius: kind === "circle" ? layer.getRadius() : null,
      createGroup: createGroup(clientId),
      onRadius: (m) => m > 0 && layer.setRadius(m),
      async save(values) {
        const properties = { name: values.name, group_ids: values.group_ids };
        if (values.contact !== null) properties.contact = values.contact;
        if (kind === "circle" && values.radius_m !== null) properties.radius_m = values.radius_m;
        if (kind === "corridor" && values.width_m !== null) properties.width_m = values.width_m;
        const body = { type: "Feature", geometry: geometryOf(layer), properties, ...(admin ? { client_id: clientId } : {}) };
        const saved = await api.post("/api/geofences", body);
        close();
        selected = saved.id;
        await refresh();
      },
      cancel: () => close(),
    });
    const close = () => {
      if (layer.pm) layer.pm.disable();
      layer.remove();
      formSlot.replaceChildren();
      editing = null;
    };
    editing = { id: null, close };
    if (layer.pm) {
      layer.pm.enable(); // the new shape may be corrected before it is saved
      layer.on("pm:edit", () => kind === "circle" && form.setRadius(layer.getRadius()));
    }
    formSlot.replaceChildren(form.element);
    form.element.querySelector("#gf-name").focus();
  }

  // -- editing one -------------------------------------------------------------------
  function openEdit(geofence) {
    const feature = geofence.feature;
    const props = feature.properties;
    const shape = geofence.shape;
    let reshaped = false;
    const onEdit = () => {
      reshaped = true;
      if (geofence.kind === "circle") form.setRadius(shape.getRadius());
      geofence.fitBand();
    };
    const form = geofenceForm({
      kind: geofence.kind,
      feature,
      groups: groupsOf(props.client_id),
      createGroup: createGroup(props.client_id),
      onRadius: (m) => m > 0 && shape.setRadius(m),
      editShape(on) {
        if (!shape.pm) return notice("Editing shapes needs Leaflet-Geoman (run make vendor).", "error");
        if (on) shape.pm.enable({ allowSelfIntersection: false });
        else shape.pm.disable();
      },
      async save(values) {
        const changed = {};
        for (const key of ["name", "contact", "radius_m", "width_m"]) {
          if (key in values && values[key] !== (props[key] || null)) changed[key] = values[key]; // "" = no contact
        }
        const oldGroups = [...(props.group_ids || [])].sort().join(",");
        if ([...values.group_ids].sort().join(",") !== oldGroups) changed.group_ids = values.group_ids;
        const body = {}; // only what changed
        if (Object.keys(changed).length) body.properties = changed;
        if (reshaped) body.geometry = geometryOf(shape);
        if (Object.keys(body).length) await api.patch(`/api/geofences/${feature.id}`, body);
        close(false);
        await refresh();
      },
      async remove() {
        await api.del(`/api/geofences/${feature.id}`);
        close(false);
        selected = null;
        await refresh();
      },
      cancel: () => close(true),
    });
    const close = (revert) => {
      if (shape.pm) shape.pm.disable();
      formSlot.replaceChildren();
      editing = null;
      if (revert) render(); // the shape as it was
    };
    shape.on("pm:edit", onEdit);
    shape.on("pm:markerdrag", () => geofence.fitBand()); // the band follows the line
    editing = { id: feature.id, close: () => close(true) };
    formSlot.replaceChildren(form.element);
  }

  // -- start -------------------------------------------------------------------------
  (async () => {
    if (write) await load("geoman").catch((error) => notice(`Drawing is not available: ${error.message}`, "error")); // before the map: Geoman hooks into new maps and layers
    await styles;
    if (closed) return;
    if (window.L) {
      map = baseMap(mapEl);
      view.mapInstance = map;
      resized = new ResizeObserver(() => map.invalidateSize());
      resized.observe(mapEl);
      if (map.pm) {
        map.pm.setGlobalOptions({ snappable: false });
        map.on("pm:create", (event) => openNew(event.shape, event.layer));
        map.on("pm:drawend", () => {
          for (const b of drawButtons) b.setAttribute("aria-pressed", "false");
        });
      }
    } else {
      mapEl.append(h("p.empty", "No map library (run make vendor)."));
    }
    if (admin && write) {
      const { clients } = await api.get("/api/clients");
      clientSelect.replaceChildren(...clients.map((c) => h("option", { value: c.id }, c.name)));
    }
    await refresh();
    if (closed) return;
    const shown = [...layers.values()].filter((l) => map && map.hasLayer(l.layer));
    if (map && shown.length) map.fitBounds(L.featureGroup(shown.map((l) => l.layer)).getBounds(), { padding: [30, 30], maxZoom: 16 });
    view.dataset.ready = "1";
  })().catch((error) => {
    if (error.status !== 401 && !closed) notice(`Could not load the geofences: ${error.message}`, "error");
  });

  return () => {
    closed = true;
    if (map && map.pm) map.pm.disableDraw();
    if (resized) resized.disconnect();
    if (map) map.remove();
    view.classList.remove("gf-page");
    delete view.dataset.ready;
    delete view.mapInstance;
  };
}
