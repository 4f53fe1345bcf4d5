// Third-party libraries the pages load when they need them (the map's are in the
// entry page). A library that is missing rejects with a message saying so.
import { asset, config } from "./config.js";

const LIBRARIES = {
  uplot: { js: "vendor/uplot/uPlot.iife.min.js", css: "vendor/uplot/uPlot.min.css", global: "uPlot" },
  geoman: {
    js: "vendor/leaflet-geoman-free/leaflet-geoman.min.js",
    css: "vendor/leaflet-geoman-free/leaflet-geoman.css",
    global: "L.PM",
  },
};
const loading = new Map();

function present(path) {
  return path.split(".").reduce((o, k) => (o ? o[k] : undefined), window);
}

export function load(name) {
  const lib = LIBRARIES[name];
  if (present(lib.global)) return Promise.resolve(present(lib.global));
  if (!loading.has(name)) {
    loading.set(
      name,
      new Promise((resolve, reject) => {
        const css = Object.assign(document.createElement("link"), { rel: "stylesheet", href: asset(lib.css) });
        const script = Object.assign(document.createElement("script"), { src: asset(lib.js) });
        script.onload = () => resolve(present(lib.global));
        script.onerror = () => reject(new Error(`${name} is not installed: run make vendor`));
        document.head.append(css, script);
      }),
    );
  }
  return loading.get(name);
}

/** The libraries of the entry page that are missing (make vendor was not run). */
export function missing() {
  return config.vendor_missing || [];
}

const sheets = new Map();
/** A page's own stylesheet (a file of static/, next to app.css), added once; resolves
 * when applied, or when it failed to load (unstyled, but working). */
export function stylesheet(path) {
  if (!sheets.has(path)) {
    sheets.set(
      path,
      new Promise((resolve) => {
        const link = Object.assign(document.createElement("link"), { rel: "stylesheet", href: asset(path) });
        link.addEventListener("load", resolve);
        link.addEventListener("error", resolve);
        document.head.append(link);
      }),
    );
  }
  return sheets.get(path);
}
