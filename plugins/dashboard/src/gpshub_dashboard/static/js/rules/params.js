// Form fields generated from a JSON Schema (a rule type's `params`, a sink kind's
// `settings`), and the values read back from them. POI and group ids are chosen by name
// from `choices`. Fields are named "<prefix>.<property>", with the ids "<prefix>-<property>".
import { h } from "../dom.js";

const CHOICE_OF = { poi_id: "pois", poi_ids: "pois", group_ids: "groups" };

function label(name, schema) {
  const words = schema.title || name.replace(/_/g, " ");
  return words.replace(/\bKmh\b/i, "(km/h)").replace(/ S$/, " (s)").replace(/ M$/, " (m)");
}

function kind(schema) {
  if (schema.enum) return "enum";
  if (schema.anyOf) return "any";
  return schema.type === "array" ? `array-${(schema.items || {}).type}` : schema.type;
}

function input(name, schema, value, choices, prefix) {
  const id = `${prefix}-${name}`;
  const base = { id, name: `${prefix}.${name}` };
  const options = choices[CHOICE_OF[name]];
  const k = kind(schema);
  if (options && (k === "integer" || k === "array-integer")) {
    const multiple = k === "array-integer";
    const chosen = new Set(multiple ? value || [] : [value]);
    return h(
      "select",
      { ...base, multiple },
      multiple ? null : h("option", { value: "" }, "—"),
      options.map(([v, t]) => h("option", { value: v, selected: chosen.has(v) }, t)),
    );
  }
  if (k === "enum") return h("select", base, schema.enum.map((v) => h("option", { value: v, selected: v === value }, v)));
  if (k === "boolean") return h("input", { ...base, type: "checkbox", checked: value ?? schema.default ?? false });
  if (k === "integer" || k === "number") {
    return h("input", {
      ...base,
      type: "number",
      step: k === "integer" ? 1 : "any",
      min: schema.minimum ?? schema.exclusiveMinimum,
      max: schema.maximum,
      value: value ?? schema.default,
    });
  }
  const text = Array.isArray(value) ? value.join(", ") : value ?? "";
  return h("input", { ...base, type: "text", value: text, placeholder: k.startsWith("array") ? "comma-separated" : null });
}

/** The fields of `schema`, filled from `values`. */
export function paramFields(schema, values = {}, choices = {}, prefix = "params") {
  const required = new Set(schema.required || []);
  const props = Object.entries(schema.properties || {});
  if (!props.length) return [h("p.ar-hint", "This type has no parameters.")];
  return props.map(([name, prop]) => {
    const el = input(name, prop, (values || {})[name], choices, prefix);
    const help = prop.description ? h("small.ar-hint", prop.description) : null;
    const note = CHOICE_OF[name] && !choices[CHOICE_OF[name]]?.length ? " (none defined)" : "";
    const title = label(name, prop) + (required.has(name) ? " *" : "") + note;
    return h("label.field", { for: el.id }, title, el, prop.type === "array" ? h("small.ar-hint", "none chosen: any") : help);
  });
}

function scalar(text) {
  if (text === "true" || text === "false") return text === "true";
  if (text.trim() !== "" && Number.isFinite(Number(text))) return Number(text);
  return text;
}

/** The values that `form`'s fields say, for `schema`; empty fields are left out. */
export function readParams(form, schema, prefix = "params") {
  const params = {};
  for (const [name, prop] of Object.entries(schema.properties || {})) {
    const el = form.elements.namedItem(`${prefix}.${name}`);
    if (!el) continue;
    const k = kind(prop);
    if (el.multiple) {
      const ids = [...el.selectedOptions].map((o) => Number(o.value));
      if (ids.length) params[name] = ids;
    } else if (k === "boolean") params[name] = el.checked;
    else if (el.value === "") continue;
    else if (k === "integer" || k === "number") params[name] = Number(el.value);
    else if (k === "array-integer") params[name] = el.value.split(",").filter((x) => x.trim()).map((x) => Number(x));
    else if (k === "array-string") params[name] = el.value.split(",").map((x) => x.trim()).filter(Boolean);
    else if (k === "any") params[name] = scalar(el.value);
    else params[name] = el.value;
  }
  return params;
}
