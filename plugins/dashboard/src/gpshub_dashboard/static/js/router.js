// Hash routes: "#/map", "#/signin", "#/history?device=7". A page module exports
// `title` and `mount(view, ctx)`, which returns a function that undoes what it opened.
const routes = new Map();
let current = null;
let guard = () => null;

export function route(name, page) {
  routes.set(name, page);
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
  const render = () => {
    let { name, params } = parse();
    const instead = guard(name);
    if (instead && instead !== name) return go(instead);
    const page = routes.get(name) || routes.get("map");
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
