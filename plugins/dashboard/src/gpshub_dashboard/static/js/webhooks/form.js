// The new-sink form: name, kind, format, the kind's settings generated from its JSON
// Schema, signing, enabled. The answer's signing secret is shown once.
import { h } from "../dom.js";
import { paramFields, readParams } from "../rules/params.js";

/** `kinds`: GET /api/sink-kinds; `clients`: for an administrator, else null. */
export function sinkForm(kinds, clients, save, done) {
  const byKind = new Map(kinds.map((k) => [k.kind, k]));
  const kind = h("select#sink-kind", { name: "kind" }, kinds.map((k) => h("option", { value: k.kind }, k.title || k.kind)));
  const format = h("select#sink-format", { name: "format" });
  const settings = h("fieldset.ar-params#sink-settings", h("legend", "Settings"));
  const error = h("p.error.form-error#sink-error", { role: "alert", hidden: true });
  const showKind = () => {
    const k = byKind.get(kind.value);
    format.replaceChildren(...k.formats.map((f) => h("option", { value: f.kind, selected: f.kind === k.default_format }, `${f.title || f.kind} (${f.purpose})`)));
    settings.replaceChildren(h("legend", "Settings"), ...paramFields(k.settings, {}, {}, "settings"));
  };
  kind.addEventListener("change", showKind);
  const client = clients
    ? h("label.field", "Client", h("select#sink-client", { name: "client_id" }, clients.map((c) => h("option", { value: c.id }, c.name))))
    : null;
  const form = h(
    "form.ar-card.rule-form#sink-form",
    { novalidate: true },
    h("h2", "New webhook"),
    client,
    h("label.field", "Name", h("input#sink-name", { name: "name", required: true, maxlength: 200 })),
    h("label.field", "Kind", kind),
    h("label.field", "Format", format),
    settings,
    h("label.ar-check", h("input#sink-signing", { type: "checkbox", name: "signing", checked: true }), "Sign requests (the secret is shown once)"),
    h("label.ar-check", h("input#sink-enabled", { type: "checkbox", name: "enabled", checked: true }), "Enabled"),
    error,
    h("div.ar-actions", h("button.primary#sink-save", { type: "submit" }, "Create"), h("button#sink-cancel", { type: "button", onclick: done }, "Cancel")),
  );
  if (kinds.length) showKind();

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const f = form.elements;
    const body = {
      name: f.namedItem("name").value.trim(),
      kind: kind.value,
      format: format.value || null,
      settings: readParams(form, byKind.get(kind.value).settings, "settings"),
      signing: f.namedItem("signing").checked,
      enabled: f.namedItem("enabled").checked,
    };
    if (client) body.client_id = Number(f.namedItem("client_id").value);
    error.hidden = true;
    let saved;
    try {
      saved = await save(body);
    } catch (e) {
      error.textContent = e.field ? `${e.field}: ${e.message}` : e.message;
      error.hidden = false;
      return;
    }
    if (!saved.signing_secret && !(saved.warnings || []).length) return done();
    form.replaceChildren(
      h("h2", `“${saved.name}” created`),
      saved.signing_secret
        ? h("div.secret", h("p", "Its signing secret, shown this once: give it to the receiver now."), h("code#sink-secret", saved.signing_secret))
        : null,
      ...(saved.warnings || []).map((w) => h("p.ar-hint.warning", w)),
      h("div.ar-actions", h("button.primary#sink-done", { type: "button", onclick: done }, "Done")),
    );
  });
  return form;
}
