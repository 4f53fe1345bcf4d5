// Hash routes: "#/map", "#/signin", "#/history?device=7". A page module exports
// `title` and `mount(view, ctx)`, which returns a function that undoes what it opened.
// A route is given the module's loader, `() => import("./pages/x.js")`: a page's code is
// fetched when it is first shown, so the first page loads only what it needs.
import { notice } from "./dom.js";

const routes = new Map(); // name → loader, then the module once loaded
let current = null;
let guard = () => null;
let shown = 0; // the latest render: a page still loading when another is asked is not shown

export function route(name, load) {
  routes.set(name, load);
}

/** Start fetching a page's code (the first page's, while the session is checked). */
export function preload(name) {
  if (routes.has(name)) loaded(name).catch(() => {}); // a failure is shown when it is rendered
}

async function loaded(name) {
  let page = routes.get(name);
  if (typeof page === "function") {
    page = await page();
    routes.set(name, page);
  }
  return page;
}

/** `check(name)` returns the route to go to instead (e.g. "signin"), or null. */
export function setGuard(check) {
  guard = check;
}

export function go(name, params = {}) {
  const search = new URLSearchParams(params).toString();
  const hash = `#/${name}${search ? "?" + search : ""}`;
  if (location.hash === hash) render();
  else location.hash = hash;
}

export function parse() {
  const [path, search] = location.hash.replace(/^#\/?/, "").split("?");
  return { name: path || "map", params: Object.fromEntries(new URLSearchParams(search || "")) };
}

export function start(view, ctx) {
  const render = async () => {
    let { name, params } = parse();
    const instead = guard(name);
    if (instead && instead !== name) return go(instead);
    if (!routes.has(name)) name = "map";
    const ticket = ++shown;
    let page;
    try {
      page = await loaded(name);
    } catch (error) {
      notice(`The page “${name}” could not be loaded: ${error.message}`, "error");
      return;
    }
    if (ticket !== shown) return; // another page was asked for meanwhile
    if (current) current();
    view.replaceChildren();
    document.title = `${page.title} · gpshub`;
    document.body.dataset.page = name;
    current = page.mount(view, { ...ctx, params, go }) || null;
  };
  renderNow = render;
  window.addEventListener("hashchange", render);
  render();
}

let renderNow = () => {};
function render() {
  renderNow();
}
