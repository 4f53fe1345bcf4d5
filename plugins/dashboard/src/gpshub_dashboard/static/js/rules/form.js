// The rule form (create or edit): name, type, the type's params generated from its
// schema, devices, tags, schedule, enabled, webhook. Errors from the API name their field.
import { h } from "../dom.js";
import { session } from "../session.js";
import { paramFields, readParams } from "./params.js";
import { scheduleFields } from "./schedule.js";

function multiSelect(id, name, options, chosen) {
  const set = new Set(chosen || []);
  return h("select", { id, name, multiple: true, size: Math.min(6, Math.max(2, options.length)) }, options.map(([v, t]) => h("option", { value: v, selected: set.has(v) }, t)));
}

/**
 * `data`: {types, devices, choices, clients}; `rule`: the rule to edit, or null;
 * `save(body)` returns a promise; `done()` closes the form.
 */
export function ruleForm({ types, devices, choices, clients, alertsWebhook }, rule, save, done) {
  const byName = new Map(types.map((t) => [t.name, t]));
  const type = h("select#rule-type", { name: "type" }, types.map((t) => h("option", { value: t.name, selected: rule && rule.type === t.name }, `${t.name} — ${t.description}`)));
  const params = h("fieldset.ar-params#rule-params", h("legend", "Parameters"));
  const error = h("p.error.form-error#rule-error", { role: "alert", hidden: true });
  const showParams = (values) => {
    const t = byName.get(type.value);
    params.replaceChildren(h("legend", "Parameters"), ...paramFields(t.params, values, choices));
  };
  type.addEventListener("change", () => showParams({}));
  const webhook = h("input#rule-webhook", { type: "checkbox", name: "webhook", checked: rule ? rule.webhook : false });
  const client = clients && !rule // a rule stays with its client (PATCH takes no client_id)
    ? h("label.field", "Client", h("select#rule-client", { name: "client_id" }, clients.map((c) => h("option", { value: c.id }, c.name))))
    : null;
  // schedules are read in the rule's client's time zone
  const zone = () => {
    if (!clients) return session.timezone;
    const owner = rule ? rule.client_id : Number(client.querySelector("select").value);
    const found = clients.find((c) => c.id === owner);
    return found ? found.timezone : null;
  };
  const schedule = scheduleFields(rule ? rule.schedule : null, zone);
  const form = h(
    "form.ar-card.rule-form#rule-form",
    { novalidate: true },
    h("h2", rule ? `Edit “${rule.name}”` : "New rule"),
    client,
    h("label.field", "Name", h("input#rule-name", { name: "name", required: true, maxlength: 200, value: rule ? rule.name : "" })),
    h("label.field", "Type", type),
    params,
    h(
      "label.field",
      "Devices",
      multiSelect("rule-devices", "device_ids", devices.map((d) => [d.id, d.name]), rule && rule.device_ids),
      h("small.ar-hint", "none chosen: every device (or those with the tags)"),
    ),
    h("label.field", "Tags", h("input#rule-tags", { name: "tags", value: rule && rule.tags ? rule.tags.join(", ") : "", placeholder: "comma-separated" })),
    schedule.el,
    h("label.ar-check", h("input#rule-enabled", { type: "checkbox", name: "enabled", checked: rule ? rule.enabled : true }), "Enabled"),
    h("label.ar-check", webhook, "Send to the alerts webhook", h("small.ar-hint#rule-webhook-none", " (the client has none)")),
    error,
    h("div.ar-actions", h("button.primary#rule-save", { type: "submit" }, rule ? "Save" : "Create"), h("button#rule-cancel", { type: "button", onclick: done }, "Cancel")),
  );
  showParams(rule ? rule.params : {});
  const canSend = () => {
    // a client's user sees only the client's sinks; an administrator picks the client
    const owner = rule ? rule.client_id : client ? Number(form.elements.namedItem("client_id").value) : null;
    const has = owner === null ? alertsWebhook.size > 0 : alertsWebhook.has(owner);
    webhook.disabled = !has && !webhook.checked; // what the API refuses is not offered
    form.querySelector("#rule-webhook-none").hidden = has;
  };
  if (client) form.elements.namedItem("client_id").addEventListener("change", () => (canSend(), schedule.sync()));
  canSend();

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const f = form.elements;
    const chosen = [...f.namedItem("device_ids").selectedOptions].map((o) => Number(o.value));
    const tags = f.namedItem("tags").value.split(",").map((t) => t.trim()).filter(Boolean);
    const body = {
      name: f.namedItem("name").value.trim(),
      type: type.value,
      params: readParams(form, byName.get(type.value).params),
      // a rule left naming no device (its devices deleted) keeps [] unless devices are chosen
      device_ids: chosen.length ? chosen : rule && Array.isArray(rule.device_ids) && !rule.device_ids.length ? [] : null,
      tags: tags.length ? tags : null,
      schedule: schedule.read(),
      enabled: f.namedItem("enabled").checked,
      webhook: f.namedItem("webhook").checked,
    };
    if (client) body.client_id = Number(f.namedItem("client_id").value);
    for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
    error.hidden = true;
    try {
      await save(body);
      done();
    } catch (e) {
      error.textContent = e.field ? `${e.field}: ${e.message}` : e.message;
      error.hidden = false;
      // a group of checkboxes (a schedule's days) is marked as a whole
      const group = e.field && form.querySelector(`[data-field="${CSS.escape(e.field)}"]`);
      const field = e.field && (group || f.namedItem(e.field) || f.namedItem(e.field.split(".").slice(0, 2).join(".")));
      if (field && field.setAttribute) {
        field.setAttribute("aria-invalid", "true");
        field.focus();
      }
    }
  });
  return form;
}
