// Change my password: the current one, the new one twice (POST /api/me/password).
import { api } from "../../api.js";
import { h } from "../../dom.js";
import { clearError, fieldError, showError } from "./errors.js";

const LABELS = { current_password: "Current password", password: "New password", repeat: "Repeat" };
export const MIN_LENGTH = 10; // the hub's (hub/passwords.py)

/** `hasPassword`: false for a user who has none yet (then no current one is asked). */
export function passwordForm(hasPassword = true) {
  const error = h("p.error#pw-error", { role: "alert", hidden: true });
  const done = h("p.result.ok#pw-done", { role: "status", hidden: true }, "Password changed. Your other sessions were signed out.");
  const pw = (id, name, autocomplete) => h(`input#${id}`, { name, type: "password", autocomplete, required: true });
  const button = h("button.primary#pw-save", { type: "submit" }, "Change password");
  const form = h(
    "form.ar-card.account-form#pw-form",
    { novalidate: true },
    h("h2", "Password"),
    hasPassword ? h("label.field", LABELS.current_password, pw("pw-current", "current_password", "current-password")) : null,
    h("label.field", LABELS.password, pw("pw-new", "password", "new-password"), h("small.ar-hint", `at least ${MIN_LENGTH} characters`)),
    h("label.field", "Repeat the new password", pw("pw-repeat", "repeat", "new-password")),
    error,
    done,
    h("div.ar-actions", button),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const f = form.elements;
    const current = f.namedItem("current_password");
    const body = { current_password: current ? current.value : null, password: f.namedItem("password").value };
    clearError(form, error);
    done.hidden = true;
    const own =
      current && !body.current_password ? fieldError("current_password", "required: your password now")
      : body.password.length < MIN_LENGTH ? fieldError("password", `must have at least ${MIN_LENGTH} characters`)
      : body.password !== f.namedItem("repeat").value ? fieldError("repeat", "is not the same as the new password")
      : null;
    if (own) return showError(form, error, own, LABELS);
    button.disabled = true;
    try {
      await api.post("/api/me/password", body);
      form.reset();
      done.hidden = false;
      if (!current) {
        const next = passwordForm(true); // now there is a current one to ask for
        next.querySelector("#pw-done").hidden = false;
        form.replaceWith(next);
      }
    } catch (e) {
      showError(form, error, e, LABELS);
    } finally {
      button.disabled = false;
    }
  });
  return form;
}
