// The alerts, rules and webhooks pages: their routes, their navigation links, and the
// alert badge (main.js imports this one module).
import * as alertsPage from "../pages/alerts.js";
import * as rulesPage from "../pages/rules.js";
import * as webhooksPage from "../pages/webhooks.js";
import { route } from "../router.js";

export { syncAlerts } from "./feed.js";

route("alerts", alertsPage);
route("rules", rulesPage);
route("webhooks", webhooksPage);

export const NAV_ALERTS = [
  ["alerts", "Alerts"],
  ["rules", "Rules"],
  ["webhooks", "Webhooks"],
];
