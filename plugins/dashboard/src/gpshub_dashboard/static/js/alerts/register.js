// The alerts, rules and webhooks pages: their routes, their navigation links, and the
// alert badge (main.js imports this one module).
import * as alertsPage from "../pages/alerts.js";
import * as rulesPage from "../pages/rules.js";
import { route } from "../router.js";

export { syncAlerts } from "./feed.js";

route("alerts", alertsPage);
route("rules", rulesPage);

export const NAV_ALERTS = [
  ["alerts", "Alerts"],
  ["rules", "Rules"],
];
