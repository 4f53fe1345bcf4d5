// Add or edit a connection: the kind, its generated form, Test Connection, save.
import { api } from "../../api.js";
import { h } from "../../dom.js";
import { fieldset, highlight } from "./fields.js";

/**
 * Draw the editor into `view`. `conn`: the connection being edited (null: a new one).
 * `onSaved(conn, kind)` after a save; `onCancel()`.
 */
export function editor(view, { kinds, conn, clients, onSaved, onCancel }) {
  const byKind = new Map(kinds.map((k) => [k.kind, k]));
  const editing = !!conn;
  const kindSelect = h(
    "select#conn-kind",
    { name: "kind", required: true, disabled: editing, dataset: { field: "kind" } },
    editing ? null : h("option", { value: "" }, "Choose a kind…"),
    kinds.map((k) => h("option", { value: k.kind }, `${k.title} (${k.kind})`)),
  );
  const label = h("input#conn-label", {
    name: "label",
    required: true,
    maxlength: 200,
    autocomplete: "off",
    dataset: { field: "label" },
  });
  const clientSelect = clients
    ? h(
        "select#conn-client",
        { name: "client_id", required: true, dataset: { field: "client_id" } },
        clients.map((c) => h("option", { value: c.id }, c.name)),
      )
    : null;
  const about = h("p.help#conn-kind-about");
  const fieldsBox = h("div#conn-fields");
  const result = h("p.result#conn-test-result", { role: "status", hidden: true });
  const testButton = h("button#conn-test", { type: "button", onclick: test }, "Test connection");
  const saveButton = h("button.primary#conn-save", { type: "submit" }, editing ? "Save changes" : "Save");
  const form = h(
    "form.conn-form#conn-form",
    { onsubmit: save, novalidate: true },
    h("h2", editing ? `Edit ${conn.label}` : "Add a connection"),
    h("div.field", h("label", { for: "conn-kind" }, "Kind"), kindSelect),
    about,
    h("div.field", h("label", { for: "conn-label" }, h("span.label", "Label", h("span.required", " *"))), label),
    clientSelect && h("div.field", h("label", { for: "conn-client" }, "Client"), clientSelect),
    fieldsBox,
    result,
    h(
      "div.actions",
      testButton,
      saveButton,
      h("button#conn-cancel", { type: "button", onclick: () => onCancel() }, "Cancel"),
    ),
  );
  view.append(form);

  let creds = null;
  let opts = null;
  function drawKind() {
    const kind = byKind.get(kindSelect.value);
    show(null);
    if (!kind) {
      fieldsBox.replaceChildren();
      about.textContent = "";
      creds = opts = null;
      return;
    }
    about.textContent = kind.description;
    const savedCreds = editing ? Object.fromEntries(Object.entries(conn.credentials).map(([k, v]) => [k, v.secret ? v.set : v.value])) : null;
    creds = fieldset("credentials", "Credentials", kind.credentials, savedCreds);
    opts = fieldset("options", "Options", kind.options, editing ? conn.options : null);
    fieldsBox.replaceChildren(creds.element, opts.element);
  }
  kindSelect.addEventListener("change", drawKind);
  form.addEventListener("input", (event) => event.target.removeAttribute("aria-invalid")); // being corrected
  if (editing) {
    kindSelect.value = conn.kind;
    label.value = conn.label;
  } else if (kinds.length === 1) {
    kindSelect.value = kinds[0].kind;
  }
  drawKind();

  function show(outcome) {
    if (!outcome) {
      result.hidden = true;
      highlight(form, null);
      return;
    }
    result.hidden = false;
    result.className = outcome.ok ? "result ok" : "result error";
    if (outcome.ok) {
      result.textContent = `Connection works: ${outcome.summary || "ok"}`;
      highlight(form, null);
    } else {
      const error = outcome.error || {};
      const input = highlight(form, error.field);
      const name = input ? fieldName(input) : error.field;
      result.textContent = (name ? `${name}: ` : "") + (error.message || "refused");
    }
    result.dataset.code = outcome.ok ? "ok" : (outcome.error && outcome.error.code) || "error";
  }

  /** Client-side check of required inputs, as the API would name them. */
  function missing() {
    const required = [kindSelect, label, ...fieldsBox.querySelectorAll("input[required]")];
    const empty = required.find((el) => el.type !== "checkbox" && !el.value.trim() && !el.disabled);
    if (!empty) return null;
    return { ok: false, error: { code: "invalid", message: "required", field: empty.dataset.field } };
  }

  async function busy(action) {
    testButton.disabled = saveButton.disabled = true;
    try {
      return await action();
    } catch (error) {
      show({ ok: false, error: { code: error.code, message: error.message, field: error.field } });
      return null;
    } finally {
      testButton.disabled = saveButton.disabled = false;
    }
  }

  async function test() {
    const absent = missing();
    if (absent && absent.error.field !== "label") return show(absent);
    show(null);
    result.hidden = false;
    result.className = "result";
    result.textContent = "Testing…";
    const outcome = await busy(() =>
      editing
        ? api.post(`/api/connections/${conn.id}/test`, { credentials: creds.values(), options: opts.values() })
        : api.post("/api/connections/test", {
            kind: kindSelect.value,
            credentials: creds.values(),
            options: opts.values(),
          }),
    );
    if (outcome) show(outcome);
  }

  async function save(event) {
    event.preventDefault();
    const absent = missing();
    if (absent) return show(absent);
    const body = { label: label.value.trim(), credentials: creds.values(), options: opts.values() };
    const saved = await busy(() => {
      if (editing) return api.patch(`/api/connections/${conn.id}`, body);
      if (clientSelect) body.client_id = Number(clientSelect.value);
      return api.post("/api/connections", { kind: kindSelect.value, ...body, enabled: true });
    });
    if (saved) onSaved(saved, byKind.get(saved.kind));
  }
}

function fieldName(input) {
  const label = input.id && document.querySelector(`label[for="${input.id}"] .label`);
  return label ? label.firstChild.textContent.trim() : input.dataset.field;
}
