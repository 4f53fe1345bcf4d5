// Alert rules: the list; managers create, edit, enable or disable and delete them.
import { api } from "../api.js";
import { h, notice } from "../dom.js";
import { ruleForm } from "../rules/form.js";

export const title = "Rules";

export function mount(view, ctx) {
  const write = ctx.session.can_write;
  const formSlot = h("div#rule-form-slot");
  const list = h("tbody#rule-list");
  const table = h("table.ar-table#rules", h("thead", h("tr", h("th", "Name"), h("th", "Type"), h("th", "Devices"), h("th", "Enabled"), write ? h("th", "") : null)), list);
  const empty = h("p.empty#rules-empty", { hidden: true }, "No rules yet.");
  const add = write ? h("button.primary#rule-new", { type: "button", onclick: () => open(null) }, "New rule") : null;
  view.classList.add("ar-page");
  view.append(h("div.ar-page-head", h("h1", "Rules"), add), formSlot, h("div.ar-scroll", table), empty);
  let data = null;
  let closed = false;

  const close = () => formSlot.replaceChildren();
  function open(rule) {
    const save = (body) => (rule ? api.patch(`/api/rules/${rule.id}`, body) : api.post("/api/rules", body)).then(refresh);
    formSlot.replaceChildren(ruleForm(data, rule, save, close));
    formSlot.querySelector("#rule-name").focus();
  }

  const devicesText = (rule) => {
    if (rule.device_ids === null) return rule.tags ? `tags: ${rule.tags.join(", ")}` : "all";
    if (!rule.device_ids.length) return "none";
    return rule.device_ids.map((id) => data.deviceNames.get(id) || `#${id}`).join(", ");
  };

  function row(rule) {
    const toggle = async (event) => {
      const box = event.target;
      box.disabled = true;
      try {
        await api.patch(`/api/rules/${rule.id}`, { enabled: box.checked });
        rule.enabled = box.checked;
      } catch (error) {
        box.checked = rule.enabled;
        notice(`Could not change the rule: ${error.message}`, "error");
      } finally {
        box.disabled = false;
      }
    };
    const remove = async () => {
      if (!confirm(`Delete the rule “${rule.name}”? Its alerts stay.`)) return;
      try {
        await api.del(`/api/rules/${rule.id}`);
        await refresh();
      } catch (error) {
        notice(`Could not delete the rule: ${error.message}`, "error");
      }
    };
    const enabled = write
      ? h("input.rule-enabled", { type: "checkbox", checked: rule.enabled, "aria-label": `Enable ${rule.name}`, onchange: toggle })
      : rule.enabled ? "yes" : "no";
    return h(
      "tr",
      { dataset: { id: rule.id } },
      h("td", rule.name, rule.schedule ? h("small.ar-hint.rule-scheduled", " · scheduled") : null, rule.webhook ? h("small.ar-hint", " · webhook") : null),
      h("td", rule.type),
      h("td", devicesText(rule)),
      h("td", enabled),
      write
        ? h("td.ar-actions", h("button.edit", { type: "button", onclick: () => open(rule) }, "Edit"), h("button.delete", { type: "button", onclick: remove }, "Delete"))
        : null,
    );
  }

  async function refresh() {
    const { rules } = await api.get("/api/rules");
    if (closed) return;
    list.replaceChildren(...rules.map(row));
    empty.hidden = rules.length > 0;
  }

  (async () => {
    const admin = ctx.session.is_admin && !ctx.session.client;
    const [types, devices, pois, groups, clients, sinks] = await Promise.all([
      api.get("/api/rule-types"),
      api.get("/api/devices"),
      api.get("/api/geofences").catch(() => ({ features: [] })),
      api.get("/api/geofence-groups").catch(() => ({ groups: [] })),
      admin && write ? api.get("/api/clients") : null,
      api.get("/api/sinks").catch(() => ({ sinks: [] })),
    ]);
    data = {
      types: types.types,
      devices: devices.devices,
      deviceNames: new Map(devices.devices.map((d) => [d.id, d.name])),
      choices: {
        pois: pois.features.map((f) => [f.id, f.properties.name || `#${f.id}`]),
        groups: groups.groups.map((g) => [g.id, g.name]),
      },
      clients: clients ? clients.clients : null,
      // a rule may send to the alerts webhook only once its client has one
      alertsWebhook: new Set(sinks.sinks.filter((k) => k.purpose === "alerts").map((k) => k.client_id)),
    };
    await refresh();
    view.dataset.ready = "1";
  })().catch((error) => {
    if (error.status !== 401) notice(`Could not load the rules: ${error.message}`, "error");
  });

  return () => {
    closed = true;
    view.classList.remove("ar-page");
    delete view.dataset.ready;
  };
}
