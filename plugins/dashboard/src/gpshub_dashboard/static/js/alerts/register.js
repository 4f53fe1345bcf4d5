// The alerts, rules and webhooks pages: their routes, their navigation links, and the
// alert badge (main.js imports this one module; the pages load when first shown).
import { route } from "../router.js";

export { syncAlerts } from "./feed.js";

route("alerts", () => import("../pages/alerts.js"));
route("rules", () => import("../pages/rules.js"));
route("webhooks", () => import("../pages/webhooks.js"));

export const NAV_ALERTS = [
  ["alerts", "Alerts"],
  ["rules", "Rules"],
  ["webhooks", "Webhooks"],
];
