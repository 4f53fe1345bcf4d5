// My account, for every role: who I am, change my password, my API tokens.
import { h, notice } from "../dom.js";
import { passwordForm } from "./account/password.js";
import { tokensCard } from "./account/tokens.js";

export const title = "Account";

const ROLES = { admin: "administrator", manager: "manager", viewer: "viewer" };

export function mount(view, ctx) {
  const { user, client } = ctx.session;
  const zone = client ? client.timezone : Intl.DateTimeFormat().resolvedOptions().timeZone;
  const fact = (label, value, id) => [h("dt", label), h(`dd#${id}`, value)];
  const who = h(
    "section.ar-card.account-card#account-who",
    h("h2", "Who I am"),
    h(
      "dl.facts.account-facts",
      fact("Name", user.name, "account-name"),
      fact("Role", ROLES[user.role] || user.role, "account-role"),
      fact("Client", client ? client.name : "— (the system administrator)", "account-client"),
      fact("Time zone", client ? zone : `${zone} (this browser's)`, "account-zone"),
    ),
  );
  const tokens = tokensCard();
  view.classList.add("ar-page");
  view.append(h("div.ar-page-head", h("h1", "Account")), h("div.account-grid", who, passwordForm(user.has_password !== false), tokens.card));
  let closed = false;
  tokens
    .refresh()
    .then(() => {
      if (!closed) view.dataset.ready = "1";
    })
    .catch((error) => {
      if (error.status !== 401) notice(`Could not load the tokens: ${error.message}`, "error");
    });
  return () => {
    closed = true;
    view.classList.remove("ar-page");
    delete view.dataset.ready;
  };
}
