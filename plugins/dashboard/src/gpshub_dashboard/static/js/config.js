// What the hub tells the page: <meta name="gpshub-config"> (see site.py, Site.config).
const meta = document.querySelector('meta[name="gpshub-config"]');
export const config = JSON.parse(meta ? meta.content : "{}");

/** The URL of a file of static/ (its digest prefix included). */
export function asset(name) {
  return `${config.assets}/${name}`;
}
