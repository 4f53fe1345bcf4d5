// Alerts: newest first, older ones page by page, new ones prepended as they are raised.
// A click opens the map on the alert's place with its device selected.
import { api, query } from "../api.js";
import { markSeen, watchAlerts } from "../alerts/feed.js";
import { h, notice } from "../dom.js";
import { dateTime } from "../format.js";

export const title = "Alerts";
const PAGE = 50;

export function mount(view, ctx) {
  const list = h("ol.alert-list#alert-list");
  const empty = h("p.empty#alerts-empty", { hidden: true }, "No alerts yet.");
  const more = h("button#alerts-more", { type: "button", hidden: true, onclick: () => load() }, "Older alerts");
  view.classList.add("ar-page");
  view.append(h("div.ar-page-head", h("h1", "Alerts")), list, empty, more);
  const shown = new Set();
  let before = null;
  let closed = false;

  const row = (alert, fresh) =>
    h(
      "li",
      { dataset: { id: alert.id, device: alert.device_id } },
      h(
        "button.alert-row" + (fresh ? ".fresh" : ""),
        { type: "button", title: "Show on the map", onclick: () => ctx.go("map", { device: alert.device_id, lat: alert.lat, lon: alert.lon }) },
        h("span.alert-time", dateTime(alert.fix_time)),
        h("span.alert-what", alert.event || alert.message_id),
        h("span.alert-vehicle", alert.vehicle),
        h("span.alert-rule", alert.rule_name),
        h("span.alert-place", alert.place || `${alert.lat.toFixed(5)}, ${alert.lon.toFixed(5)}`),
      ),
    );

  const add = (alerts, { top = false, fresh = false } = {}) => {
    const rows = alerts.filter((a) => !shown.has(a.id)).map((a) => (shown.add(a.id), row(a, fresh)));
    if (top) list.prepend(...rows);
    else list.append(...rows);
    empty.hidden = shown.size > 0;
  };

  const stop = watchAlerts((alert) => add([alert], { top: true, fresh: true }));
  markSeen();

  async function load() {
    more.disabled = true;
    try {
      const page = await api.get("/api/alerts" + query({ order: "desc", limit: PAGE, before_id: before }));
      if (closed) return;
      add(page.alerts);
      before = page.next_before_id;
      more.hidden = page.alerts.length < PAGE;
    } catch (error) {
      if (error.status !== 401) notice(`Could not load the alerts: ${error.message}`, "error");
    } finally {
      more.disabled = false;
    }
  }
  load();

  return () => {
    closed = true;
    stop();
    markSeen(); // what came while the list was open has been seen
    view.classList.remove("ar-page");
  };
}
