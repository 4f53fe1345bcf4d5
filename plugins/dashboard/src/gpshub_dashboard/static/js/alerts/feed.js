// Alerts as they are raised, on every page: one live feed while signed in, a badge on
// the navigation's "Alerts" link counting the new ones (cleared when the list is
// viewed), and listeners (the alerts page prepends what comes).
import { h } from "../dom.js";
import { LiveFeed } from "../live.js";

let feed = null;
let unseen = 0;
const listeners = new Set();
const badge = h("span.badge#alerts-badge", { hidden: true, title: "New alerts" });

function show() {
  badge.textContent = unseen > 99 ? "99+" : String(unseen);
  badge.dataset.count = String(unseen);
  badge.hidden = unseen === 0;
}

function onMessage(message) {
  if (message.type !== "alert" || !message.data) return;
  unseen += 1;
  show();
  for (const listener of listeners) listener(message.data);
}

/** After the header is drawn: the badge on the Alerts link, the feed open while signed in. */
export function syncAlerts(signedIn, onUnauthorized) {
  queueMicrotask(() => {
    // the header is (re)drawn in the same task, after this call
    const link = document.querySelector('#nav a[href="#/alerts"]');
    if (link) link.append(badge);
  });
  if (signedIn && !feed) {
    // only alerts matter here: positions at most once an hour per device
    feed = new LiveFeed({ onMessage, onUnauthorized, maxRateS: 3600 });
  } else if (!signedIn && feed) {
    feed.close();
    feed = null;
    unseen = 0;
    show();
  }
}

/** The new alerts have been seen: the badge goes. */
export function markSeen() {
  unseen = 0;
  show();
}

/** `listener(alert)` for each alert raised from now on; returns the function that stops it. */
export function watchAlerts(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}
