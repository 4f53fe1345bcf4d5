// The live map: every device the user may see, a device list beside it, a panel for
// the selected device, kept current by the live feed.
import { api } from "../api.js";
import { h, notice } from "../dom.js";
import { LiveFeed } from "../live.js";
import { baseMap } from "../map/base.js";
import { DeviceList } from "../map/list.js";
import { Fleet } from "../map/fleet.js";
import { Markers } from "../map/markers.js";
import { DevicePanel } from "../map/panel.js";

export const title = "Live map";

export function mount(view, ctx) {
  const side = h("aside.side#side");
  const mapEl = h("div.map#map", { role: "application", "aria-label": "Map" });
  const panelEl = h("section.panel#panel", { hidden: true });
  const liveState = h("span.live-state#live-state", "connecting");
  const toggle = h("button.list-toggle#list-toggle", { type: "button", onclick: () => view.classList.toggle("list-open") }, "Devices");
  view.classList.add("map-page");
  view.append(side, h("div.map-wrap", mapEl, panelEl, liveState, toggle));
  let live = null;
  let timer = null;
  let closed = false;

  if (typeof window.L === "undefined") {
    notice("The map library is not installed (run make vendor): the map cannot be shown.", "error");
    mapEl.append(h("p.empty", "No map library."));
  }

  (async () => {
    const [devices, latest, connections] = await Promise.all([
      api.get("/api/devices"),
      api.get("/api/devices/latest"),
      api.get("/api/connections").catch(() => ({ connections: [] })),
    ]);
    if (closed) return;
    const fleet = new Fleet();
    fleet.load(devices.devices, latest.positions);
    const conns = new Map((connections.connections || []).map((c) => [c.id, c]));
    let selected = null;
    const select = (id) => {
      selected = id;
      panel.show(id);
      list.select(id);
      if (markers) markers.focus(id);
      view.classList.remove("list-open");
    };
    const list = new DeviceList(side, fleet, { connections: conns, onSelect: select });
    const panel = new DevicePanel(panelEl, fleet, ctx, () => {
      selected = null;
      panel.hide();
      list.select(null);
    });
    let markers = null;
    if (window.L) {
      const map = baseMap(mapEl, { zoomControl: true });
      markers = new Markers(map, fleet, select);
      markers.update([...fleet.entries.keys()]);
      markers.fit();
      view.mapInstance = map;
    }
    fleet.onChange((ids) => {
      if (markers) markers.update(ids);
      list.update(ids);
      if (selected !== null && ids.includes(selected)) panel.render();
    });
    showWanted(ctx.params, fleet, select, view.mapInstance); // #/map?device=7&lat=…&lon=…
    document.body.dataset.mapReady = "1";
    performance.mark("gpshub:map-ready");
    live = new LiveFeed({
      onMessage: (message) => fleet.apply(message),
      onState: (state) => {
        liveState.textContent = state;
        liveState.dataset.state = state;
      },
      onUnauthorized: () => ctx.signedOut(),
    });
    timer = setInterval(() => {
      fleet.refresh(); // a silent device turns offline without any message
      list.tick();
      panel.tick();
    }, 1000);
  })().catch((error) => {
    if (error.status !== 401) notice(`Could not load the devices: ${error.message || error}`, "error");
  });

  return () => {
    closed = true;
    if (live) live.close();
    clearInterval(timer);
    delete document.body.dataset.mapReady;
    view.classList.remove("map-page", "list-open");
  };
}

/** The map opened on a device (an alert's link): that device selected, centred on lat/lon. */
function showWanted(params, fleet, select, map) {
  const id = Number(params.device);
  if (fleet.entries.has(id)) select(id);
  const [lat, lon] = [Number(params.lat), Number(params.lon)];
  if (map && params.lat && params.lon && Number.isFinite(lat) && Number.isFinite(lon)) map.setView([lat, lon], 16);
}
