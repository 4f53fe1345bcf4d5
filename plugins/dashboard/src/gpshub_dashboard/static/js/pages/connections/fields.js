// A form generated from a source kind's field descriptions (GET /api/source-kinds):
// secret fields as password inputs, required marked, help text, defaults, types.
import { h } from "../../dom.js";

/**
 * The inputs of `fields` (credentials or options) under `group` ("credentials" or
 * "options"). `saved`: the connection's values (editing); a saved secret stays empty with
 * the placeholder "unchanged" and is sent only when typed.
 */
export function fieldset(group, legend, fields, saved = null) {
  const inputs = new Map();
  const rows = fields.map((field) => {
    const id = `cf-${group}-${field.name}`;
    const input = makeInput(field, id, group);
    const savedValue = saved ? saved[field.name] : undefined;
    if (field.secret && saved) {
      input.placeholder = savedValue ? "unchanged" : "";
      input.dataset.keep = savedValue ? "1" : "";
    } else {
      const value = savedValue !== undefined && savedValue !== null ? savedValue : field.default;
      setValue(input, field, value);
    }
    // required: a saved secret may stay empty (it keeps its value)
    const required = field.required && !(field.secret && input.dataset.keep);
    if (required) input.required = true;
    inputs.set(field.name, { field, input });
    const help = field.description ? h("small.help", { id: `${id}-help` }, field.description) : null;
    if (help) input.setAttribute("aria-describedby", help.id);
    const label = h("span.label", field.label, required ? h("span.required", { title: "required" }, " *") : null);
    if (field.type === "boolean") {
      return h("div.field.check", h("label", { for: id }, input, label), help);
    }
    return h("div.field", h("label", { for: id }, label), input, help);
  });
  const element = fields.length ? h("fieldset", h("legend", legend), rows) : h("div");
  return {
    element,
    /** The values to send: empty optional inputs and unchanged secrets left out. */
    values() {
      const out = {};
      for (const [name, { field, input }] of inputs) {
        if (field.type === "boolean") {
          out[name] = input.checked;
          continue;
        }
        const raw = input.value;
        if (raw === "") {
          if (field.secret && input.dataset.keep) continue; // keep the saved one
          if (!field.required) continue; // the kind's default
        }
        if (field.type === "integer" || field.type === "number") out[name] = raw === "" ? null : Number(raw);
        else out[name] = field.secret ? raw : raw.trim();
      }
      return out;
    },
  };
}

function makeInput(field, id, group) {
  const attrs = { id, name: `${group}.${field.name}`, dataset: { field: `${group}.${field.name}` } };
  if (field.type === "boolean") return h("input", { ...attrs, type: "checkbox" });
  if (field.type === "integer") return h("input", { ...attrs, type: "number", step: "1", inputmode: "numeric" });
  if (field.type === "number") return h("input", { ...attrs, type: "number", step: "any", inputmode: "decimal" });
  if (field.secret) return h("input", { ...attrs, type: "password", autocomplete: "new-password" });
  return h("input", { ...attrs, type: "text", autocomplete: "off", spellcheck: "false" });
}

function setValue(input, field, value) {
  if (value === undefined || value === null) return;
  if (field.type === "boolean") input.checked = !!value;
  else input.value = typeof value === "object" ? JSON.stringify(value) : String(value);
}

/** Mark the input named by an error's dotted `field` (e.g. "credentials.password"). */
export function highlight(form, field) {
  for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
  if (!field) return null;
  const input = [...form.querySelectorAll("[data-field]")].find((el) => el.dataset.field === field);
  if (input) {
    input.setAttribute("aria-invalid", "true");
    input.focus();
  }
  return input;
}
