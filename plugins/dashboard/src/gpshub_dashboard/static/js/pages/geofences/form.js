// The geofence form (a new shape just drawn, or one to edit): name, the circle's radius
// or the corridor's width, contact, groups (and a new group). The API's errors name the
// GeoJSON field (properties.radius_m, geometry.coordinates.0.3): shown beside that field.
import { h } from "../../dom.js";
import { dateTime } from "../../format.js";
import { KINDS } from "./shapes.js";

function errorSlot(field) {
  return h("p.error.field-error", { role: "alert", hidden: true, dataset: { for: field } });
}

function numberOrNull(input) {
  return input.value.trim() === "" ? null : Number(input.value);
}

/**
 * `kind`: circle, polygon or corridor; `feature`: the geofence edited (null: a new one);
 * `groups`: the client's groups [{id, name}]; `radius`: a drawn circle's radius.
 * Actions (each returns a promise; a rejection with an ApiError is shown by its field):
 * `save(values)`, `createGroup(name)` → the group, `remove()`; `editShape(on)` turns the
 * map's editing of the shape on or off; `onRadius(m)` as the radius is typed; `cancel()`.
 * Returns {element, setRadius(m), showError(error)}.
 */
export function geofenceForm({ kind, feature, groups, radius, save, createGroup, remove, editShape, onRadius, cancel }) {
  const props = feature ? feature.properties : {};
  const input = (id, field, attrs) => h(`input#${id}`, { name: field, dataset: { field }, ...attrs });
  const name = input("gf-name", "properties.name", { required: true, maxlength: 200, autocomplete: "off", value: props.name || "" });
  const radiusInput =
    kind === "circle"
      ? input("gf-radius", "properties.radius_m", { type: "number", min: 1, step: "any", required: true, value: feature ? props.radius_m : Math.round(radius || 0) })
      : null;
  const width =
    kind === "corridor"
      ? input("gf-width", "properties.width_m", { type: "number", min: 1, step: "any", required: true, value: feature ? props.width_m : "" })
      : null;
  const contact = h("textarea#gf-contact", { name: "properties.contact", rows: 2, dataset: { field: "properties.contact" } }, props.contact || "");
  const chosen = new Set(props.group_ids || []);
  const groupList = h("div.gf-groups#gf-groups", { dataset: { field: "properties.group_ids" } });
  const groupBox = (g, checked) =>
    h("label.ar-check", h("input.gf-group", { type: "checkbox", name: "properties.group_ids", value: g.id, checked }), g.name);
  groupList.append(...groups.map((g) => groupBox(g, chosen.has(g.id))));
  const newGroup = h("input#gf-new-group", { name: "group.name", maxlength: 200, placeholder: "New group", autocomplete: "off", "aria-label": "New group", dataset: { field: "group.name" } });
  const addGroup = h("button#gf-add-group", { type: "button", onclick: makeGroup }, "Create group");
  const general = h("p.result.error#gf-error", { role: "alert", hidden: true });
  const shapeButton = feature ? h("button#gf-edit-shape", { type: "button", "aria-pressed": "false", onclick: toggleShape }, "Edit shape") : null;
  const saveButton = h("button.primary#gf-save", { type: "submit" }, feature ? "Save" : "Create");
  const deleteBox = feature ? h("div.ar-actions.gf-delete") : null;
  const labelled = (text, control, field, hint) => h("div.field", h("label", { for: control.id }, text), control, hint, errorSlot(field));
  const form = h(
    "form.ar-card.gf-form#gf-form",
    { novalidate: true, dataset: { kind } },
    h("h2", feature ? `Edit “${props.name}”` : `New ${KINDS[kind].toLowerCase()}`),
    labelled("Name", name, "properties.name"),
    radiusInput && labelled("Radius (m)", radiusInput, "properties.radius_m"),
    width && labelled("Width (m)", width, "properties.width_m", h("small.ar-hint", "the whole corridor, half on each side of the line")),
    labelled("Contact", contact, "properties.contact"),
    h(
      "fieldset.gf-group-set",
      h("legend", "Groups"),
      groupList,
      groups.length ? null : h("small.ar-hint.gf-no-groups", "No group yet."),
      h("div.gf-new-group", newGroup, addGroup),
      errorSlot("properties.group_ids"),
      errorSlot("group.name"),
    ),
    feature ? h("small.ar-hint.gf-changed", `Changed ${dateTime(props.updated_at)}`) : null,
    h("div.gf-shape-line", h("span.ar-hint", `Shape: ${KINDS[kind].toLowerCase()}`), shapeButton),
    errorSlot("geometry"),
    general,
    h("div.ar-actions", saveButton, h("button#gf-cancel", { type: "button", onclick: () => cancel() }, "Cancel"), feature ? h("button.delete#gf-delete", { type: "button", onclick: askDelete }, "Delete") : null),
    deleteBox,
  );
  form.addEventListener("input", (event) => event.target.removeAttribute("aria-invalid")); // being corrected

  function clearErrors() {
    for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
    for (const el of form.querySelectorAll(".field-error")) el.hidden = true;
    general.hidden = true;
  }

  /** Beside the field it names (the closest one: geometry.coordinates.0 → the shape). */
  function showError(error) {
    clearErrors();
    const field = error.field || "";
    const slots = [...form.querySelectorAll(".field-error")];
    const slot = slots
      .filter((s) => field === s.dataset.for || field.startsWith(s.dataset.for + "."))
      .sort((a, b) => b.dataset.for.length - a.dataset.for.length)[0];
    const text = (field ? `${field}: ` : "") + error.message;
    if (!slot) {
      general.textContent = text;
      general.hidden = false;
      return;
    }
    slot.textContent = text;
    slot.hidden = false;
    const control = form.querySelector(`[data-field="${slot.dataset.for}"]`);
    if (control) {
      control.setAttribute("aria-invalid", "true");
      if (control.focus) control.focus();
    }
  }

  function values() {
    const out = {
      name: name.value.trim(),
      contact: contact.value.trim() ? contact.value : null,
      group_ids: [...groupList.querySelectorAll("input:checked")].map((box) => Number(box.value)),
    };
    if (radiusInput) out.radius_m = numberOrNull(radiusInput);
    if (width) out.width_m = numberOrNull(width);
    return out;
  }

  async function busy(action) {
    for (const b of form.querySelectorAll("button")) b.disabled = true;
    try {
      return await action();
    } catch (error) {
      showError(error);
      return null;
    } finally {
      for (const b of form.querySelectorAll("button")) b.disabled = false;
    }
  }

  async function makeGroup() {
    clearErrors();
    const text = newGroup.value.trim();
    if (!text) return showError({ field: "group.name", message: "give the new group a name" });
    const group = await busy(async () => {
      try {
        return await createGroup(text);
      } catch (error) {
        throw { field: "group.name", message: error.message }; // the group's own name
      }
    });
    if (!group) return;
    groupList.append(groupBox(group, true));
    const none = form.querySelector(".gf-no-groups");
    if (none) none.remove();
    newGroup.value = "";
  }

  function toggleShape() {
    const on = shapeButton.getAttribute("aria-pressed") !== "true";
    shapeButton.setAttribute("aria-pressed", String(on));
    shapeButton.textContent = on ? "Done editing shape" : "Edit shape";
    editShape(on);
  }

  function askDelete() {
    deleteBox.replaceChildren(
      h("span.confirm", `Delete “${props.name}”?`),
      h("button.danger#gf-confirm-delete", { type: "button", onclick: () => busy(remove) }, "Delete"),
      h("button#gf-keep", { type: "button", onclick: () => deleteBox.replaceChildren() }, "Keep it"),
    );
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors();
    if (!name.value.trim()) return showError({ field: "properties.name", message: "required" });
    await busy(() => save(values()));
  });

  if (radiusInput && onRadius) radiusInput.addEventListener("input", () => onRadius(numberOrNull(radiusInput)));
  return {
    element: form,
    setRadius(m) {
      if (radiusInput) radiusInput.value = Math.round(m);
    },
    showError,
  };
}
