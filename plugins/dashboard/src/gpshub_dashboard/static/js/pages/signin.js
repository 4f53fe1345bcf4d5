// Sign-in: name and password (and the client, when the name exists in several).
import { h, notice } from "../dom.js";
import { signIn } from "../session.js";

export const title = "Sign in";

export function mount(view, ctx) {
  const error = h("p.error#signin-error", { role: "alert", hidden: true });
  const name = h("input#signin-name", { name: "name", autocomplete: "username", required: true, autofocus: true });
  const password = h("input#signin-password", {
    name: "password",
    type: "password",
    autocomplete: "current-password",
    required: true,
  });
  const client = h("input#signin-client", { name: "client", autocomplete: "organization" });
  const clientRow = h("label.field", { hidden: true }, "Client", client);
  const button = h("button.primary", { type: "submit" }, "Sign in");
  const form = h(
    "form.signin",
    { onsubmit: submit },
    h("h1", "Sign in to gpshub"),
    h("label.field", "User name", name),
    h("label.field", "Password", password),
    clientRow,
    error,
    button,
  );
  view.append(h("section.center", form));

  async function submit(event) {
    event.preventDefault();
    button.disabled = true;
    error.hidden = true;
    try {
      await signIn(name.value.trim(), password.value, client.value.trim() || undefined);
      notice("");
      ctx.signedIn();
    } catch (e) {
      if (e.field === "client") clientRow.hidden = false;
      error.textContent =
        e.status === 429
          ? "Too many attempts: wait a little and try again."
          : e.status === 401 || e.status === 403
            ? "Wrong user name or password."
            : e.message;
      error.hidden = false;
      password.value = "";
    } finally {
      button.disabled = false;
    }
  }
}
