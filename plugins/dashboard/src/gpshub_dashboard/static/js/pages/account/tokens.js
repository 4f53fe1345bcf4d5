// My API tokens: the list, a new one (its token shown this once, with a Copy button),
// revoke (GET/POST/DELETE /api/tokens).
import { api } from "../../api.js";
import { h, notice } from "../../dom.js";
import { dateTime } from "../../format.js";
import { clearError, showError } from "./errors.js";

const EXPIRY = [["", "never"], ["30", "in 30 days"], ["90", "in 90 days"], ["365", "in a year"]];
const DAY_MS = 86400000;

export function tokensCard() {
  const list = h("tbody#token-list");
  const empty = h("p.empty#tokens-empty", { hidden: true }, "No API tokens.");
  const shown = h("div#token-shown");
  const error = h("p.error#token-error", { role: "alert", hidden: true });
  const form = h(
    "form.token-form#token-form",
    { novalidate: true },
    h("label.field", "Name", h("input#token-name", { name: "name", maxlength: 200, placeholder: "e.g. reporting script" })),
    h("label.field", "Expires", h("select#token-expires", { name: "expires_at" }, EXPIRY.map(([v, t]) => h("option", { value: v }, t)))),
    h("div.ar-actions", h("button.primary#token-create", { type: "submit" }, "Create token")),
  );
  const card = h(
    "section.ar-card.account-card#tokens",
    h("h2", "API tokens"),
    h("p.ar-hint", "A token lets a program use the API as you (header Authorization: Bearer <token>)."),
    h("div.ar-scroll", h("table.ar-table", h("thead", h("tr", h("th", "Name"), h("th", "Starts with"), h("th", "Created"), h("th", "Last used"), h("th", "Expires"), h("th", ""))), list)),
    empty,
    form,
    error,
    shown,
  );

  function row(token) {
    const remove = async () => {
      if (!confirm(`Revoke the token “${token.name || token.prefix}”? Programs using it stop working.`)) return;
      try {
        await api.del(`/api/tokens/${token.id}`);
        await refresh();
      } catch (e) {
        notice(`Could not revoke the token: ${e.message}`, "error");
      }
    };
    return h(
      "tr",
      { dataset: { id: token.id } },
      h("td", token.name || "—"),
      h("td", h("code", `${token.prefix}…`)),
      h("td", dateTime(token.created_at)),
      h("td", token.last_used_at ? dateTime(token.last_used_at) : "never"),
      h("td", token.expires_at ? dateTime(token.expires_at) : "never"),
      h("td.ar-actions", h("button.delete", { type: "button", onclick: remove }, "Revoke")),
    );
  }

  async function refresh() {
    const { tokens } = await api.get("/api/tokens");
    list.replaceChildren(...tokens.map(row));
    empty.hidden = tokens.length > 0;
  }

  function showOnce(created) {
    const code = h("code#token-value", created.token);
    const copied = h("span.ar-hint#token-copied", { role: "status" });
    const copy = async () => {
      try {
        await navigator.clipboard.writeText(created.token);
        copied.textContent = " copied";
      } catch {
        getSelection().selectAllChildren(code); // no clipboard (not a secure origin): select it
        copied.textContent = " selected: press Ctrl+C";
      }
    };
    shown.replaceChildren(
      h(
        "div.secret.ar-card",
        h("p", `The token “${created.name || created.prefix}”, shown this once: copy it now.`),
        code,
        h("div.ar-actions", h("button#token-copy", { type: "button", onclick: copy }, "Copy"), copied, h("button#token-hide", { type: "button", onclick: () => shown.replaceChildren() }, "Done")),
      ),
    );
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const f = form.elements;
    const days = f.namedItem("expires_at").value;
    const body = { name: f.namedItem("name").value.trim() };
    if (days) body.expires_at = new Date(Date.now() + Number(days) * DAY_MS).toISOString();
    clearError(form, error);
    try {
      const created = await api.post("/api/tokens", body);
      form.reset();
      showOnce(created);
      await refresh();
    } catch (e) {
      showError(form, error, e, { name: "Name", expires_at: "Expires" });
    }
  });

  return { card, refresh };
}
