// The Users page's forms: a new user (name, role, initial password) and a user's new
// password. Errors name their field; the password's length is checked before asking.
import { h } from "../../dom.js";
import { clearError, fieldError, showError } from "../account/errors.js";
import { MIN_LENGTH } from "../account/password.js";

const LABELS = { name: "Name", role: "Role", password: "Password", client_id: "Client" };
export const ROLES = [["viewer", "viewer (sees)"], ["manager", "manager (sees and changes)"]];

function tooShort(password) {
  return password.length < MIN_LENGTH ? fieldError("password", `must have at least ${MIN_LENGTH} characters`) : null;
}

function passwordInput(id) {
  return h(`input#${id}`, { name: "password", type: "password", autocomplete: "new-password", required: true });
}

/** `save({name, role, password})` returns a promise; `done()` closes the form. */
export function userForm(save, done) {
  const error = h("p.error#user-error", { role: "alert", hidden: true });
  const form = h(
    "form.ar-card.account-form#user-form",
    { novalidate: true },
    h("h2", "New user"),
    h("label.field", LABELS.name, h("input#user-name", { name: "name", required: true, maxlength: 200, autocomplete: "off" })),
    h("label.field", LABELS.role, h("select#user-role", { name: "role" }, ROLES.map(([v, t]) => h("option", { value: v }, t)))),
    h("label.field", "Initial password", passwordInput("user-password"), h("small.ar-hint", `at least ${MIN_LENGTH} characters; the user can change it on the Account page`)),
    error,
    h("div.ar-actions", h("button.primary#user-save", { type: "submit" }, "Add user"), h("button#user-cancel", { type: "button", onclick: done }, "Cancel")),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const f = form.elements;
    const body = { name: f.namedItem("name").value.trim(), role: f.namedItem("role").value, password: f.namedItem("password").value };
    clearError(form, error);
    const own = !body.name ? fieldError("name", "required") : tooShort(body.password);
    if (own) return showError(form, error, own, LABELS);
    try {
      await save(body);
      done();
    } catch (e) {
      showError(form, error, e, LABELS);
    }
  });
  return form;
}

/** Set `user`'s password: `save(password)` returns a promise. */
export function passwordSetForm(user, save, done) {
  const error = h("p.error#user-pw-error", { role: "alert", hidden: true });
  const form = h(
    "form.ar-card.account-form#user-pw-form",
    { novalidate: true },
    h("h2", `New password for “${user.name}”`),
    h("label.field", LABELS.password, passwordInput("user-pw"), h("small.ar-hint", `at least ${MIN_LENGTH} characters; the user's sessions end`)),
    error,
    h("div.ar-actions", h("button.primary#user-pw-save", { type: "submit" }, "Set password"), h("button#user-pw-cancel", { type: "button", onclick: done }, "Cancel")),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const password = form.elements.namedItem("password").value;
    clearError(form, error);
    const own = tooShort(password);
    if (own) return showError(form, error, own, LABELS);
    try {
      await save(password);
      done();
    } catch (e) {
      showError(form, error, e, LABELS);
    }
  });
  return form;
}
