// Start-up: the session, the header, the routes. Pages: one module each in pages/.
import { NAV_ALERTS, syncAlerts } from "./alerts/register.js";
import { onUnauthorized } from "./api.js";
import { h, notice } from "./dom.js";
import { missing } from "./lib.js";
import { go, parse, preload, route, setGuard, start } from "./router.js";
import { resume, session, signOut } from "./session.js";

const NAV = [["map", "Live map"], ["history", "History"], ["connections", "Connections"], ["geofences", "Geofences"], ...NAV_ALERTS];

route("signin", () => import("./pages/signin.js"));
route("map", () => import("./pages/map.js"));
route("history", () => import("./pages/history.js"));
route("connections", () => import("./pages/connections.js"));
route("geofences", () => import("./pages/geofences.js"));
route("account", () => import("./pages/account.js"));
route("users", () => import("./pages/users.js"));

function renderHeader() {
  const bar = document.getElementById("bar");
  const signedIn = !!session.user;
  bar.hidden = !signedIn;
  syncAlerts(signedIn, () => ctx.signedOut());
  if (!signedIn) return;
  const nav = session.can_write ? [...NAV, ["users", "Users"]] : NAV; // viewers manage no users
  document.getElementById("nav").replaceChildren(...nav.map(([name, label]) => h("a", { href: `#/${name}` }, label)));
  const role = session.is_admin ? "administrator" : session.can_write ? "manager" : "viewer";
  const where = session.client ? ` · ${session.client.name}` : "";
  // the name links to the Account page; on phones only the name shows
  document.getElementById("who").replaceChildren(session.user.name, h("span.who-more", ` (${role})${where}`));
  document.body.dataset.role = role;
}

let afterSignIn = "map";
const ctx = {
  session,
  signedIn() {
    renderHeader();
    go(afterSignIn === "signin" ? "map" : afterSignIn);
  },
  signedOut() {
    session.user = null;
    renderHeader();
    go("signin");
  },
};

onUnauthorized(() => ctx.signedOut());
document.getElementById("signout").addEventListener("click", async () => {
  try {
    await signOut();
  } finally {
    ctx.signedOut();
  }
});

async function main() {
  const absent = missing();
  if (absent.length) notice(`Missing browser libraries (run make vendor): ${absent.join(", ")}`, "error");
  preload(parse().name);
  try {
    await resume();
  } catch (error) {
    notice(`The hub did not answer: ${error.message}`, "error");
  }
  renderHeader();
  setGuard((name) => {
    if (!session.user && name !== "signin") {
      afterSignIn = name;
      return "signin";
    }
    if (session.user && name === "signin") return "map";
    return null;
  });
  start(document.getElementById("view"), ctx);
}

main();
