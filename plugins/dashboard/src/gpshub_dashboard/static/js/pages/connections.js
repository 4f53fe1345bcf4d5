// Connections: the list (state, last poll, last error, devices; enable/disable, delete),
// and for managers the editor (#/connections?add=1, ?edit=<id>) and the remote devices
// to import (?devices=<id>).
import { api } from "../api.js";
import { h, notice } from "../dom.js";
import { ago, dateTime, number } from "../format.js";
import { remoteDevices } from "./connections/devices.js";
import { editor } from "./connections/editor.js";

export const title = "Connections";

const REFRESH_MS = 15_000;

export function mount(view, ctx) {
  const canWrite = ctx.session.can_write;
  const page = h("section.conn-page#connections");
  view.append(page);
  let closed = false;
  let undo = null;
  const list = () => ctx.go("connections");

  (async () => {
    try {
      const p = ctx.params;
      if (canWrite && p.add) {
        const [kinds, clients] = await Promise.all([loadKinds(), loadClients(ctx)]);
        if (closed) return;
        if (!kinds.length) return page.append(h("p.empty", "No source kind is installed."));
        editor(page, { kinds, conn: null, clients, onCancel: list, onSaved: afterSave });
      } else if (canWrite && p.edit) {
        const [kinds, conn] = await Promise.all([loadKinds(), api.get(`/api/connections/${Number(p.edit)}`)]);
        if (closed) return;
        const kind = kinds.find((k) => k.kind === conn.kind);
        if (!kind) return page.append(h("p.error", `The source kind ${conn.kind} is not installed.`));
        editor(page, { kinds: [kind], conn, clients: null, onCancel: list, onSaved: list });
      } else if (canWrite && p.devices) {
        const conn = await api.get(`/api/connections/${Number(p.devices)}`);
        if (closed) return;
        undo = remoteDevices(page, conn, { onDone: list });
      } else {
        undo = table(page, ctx);
      }
    } catch (error) {
      if (!closed) notice(`Connections: ${error.message}`, "error");
    }
  })();

  function afterSave(conn, kind) {
    if (kind && kind.supports_browse) ctx.go("connections", { devices: conn.id });
    else list();
  }

  return () => {
    closed = true;
    if (undo) undo();
    notice("");
  };
}

async function loadKinds() {
  return (await api.get("/api/source-kinds")).kinds;
}

/** The system administrator names the client of a new connection; others have theirs. */
async function loadClients(ctx) {
  if (!ctx.session.is_admin || ctx.session.client) return null;
  return (await api.get("/api/clients")).clients;
}

/** The list, refreshed every 15 s; returns its stop function. */
function table(page, ctx) {
  const canWrite = ctx.session.can_write;
  const head = h(
    "div.conn-head",
    h("h1", "Connections"),
    canWrite ? h("button.primary#conn-add", { type: "button", onclick: () => ctx.go("connections", { add: 1 }) }, "Add connection") : null,
  );
  const body = h("div.conn-list#conn-list", h("p.loading", "Loading…"));
  page.append(head, body);
  let kinds = new Map();
  let clients = null; // the system administrator sees every client's: id → name
  let timer = null;
  let stopped = false;

  async function load() {
    const first = !kinds.size;
    const [status, kindList, clientList] = await Promise.all([api.get("/api/status"), first ? loadKinds() : null, first ? loadClients(ctx) : null]);
    if (stopped) return;
    if (kindList) kinds = new Map(kindList.map((k) => [k.kind, k]));
    if (clientList) clients = new Map(clientList.map((c) => [c.id, c.name]));
    draw(status.connections);
  }

  function draw(conns) {
    if (!conns.length) {
      body.replaceChildren(h("p.empty", canWrite ? "No connection yet: add one." : "No connection yet."));
      return;
    }
    body.replaceChildren(...conns.map(card));
  }

  function card(c) {
    const kind = kinds.get(c.kind);
    const actions = canWrite ? rowActions(c, kind) : null;
    return h(
      "article.conn-card",
      { dataset: { id: c.connection_id, state: c.state } },
      h(
        "div.conn-title",
        h("h2", c.label),
        h("span.state", { dataset: { state: c.state } }, c.enabled ? c.state.replace("_", " ") : "disabled"),
      ),
      h(
        "dl.facts",
        clients ? [h("dt", "Client"), h("dd.conn-client", clients.get(c.client_id) || `#${c.client_id}`)] : null,
        h("dt", "Kind"),
        h("dd", kind ? kind.title : c.kind),
        h("dt", "Last poll"),
        h("dd.last-poll", { title: c.last_poll_at ? dateTime(c.last_poll_at) : "" }, c.last_poll_at ? `${ago(c.last_poll_at)} (${dateTime(c.last_poll_at)})` : "never"),
        h("dt", "Devices"),
        h("dd.devices", number(c.devices)),
        h("dt", "Positions"),
        h("dd", number(c.positions_received)),
        c.state_message ? [h("dt", "State"), h("dd", c.state_message)] : null,
        c.last_error ? [h("dt", "Last error"), h("dd.error.last-error", c.last_error)] : null,
      ),
      actions,
    );
  }

  function rowActions(c, kind) {
    const box = h("div.actions");
    const act = async (action) => {
      for (const b of box.querySelectorAll("button")) b.disabled = true;
      try {
        await action();
        await load();
      } catch (error) {
        notice(`${c.label}: ${error.message}`, "error");
        await load().catch(() => {});
      }
    };
    const toggle = h(
      "button.toggle",
      { type: "button", onclick: () => act(() => api.post(`/api/connections/${c.connection_id}/${c.enabled ? "disable" : "enable"}`)) },
      c.enabled ? "Disable" : "Enable",
    );
    const edit = h("button.edit", { type: "button", onclick: () => ctx.go("connections", { edit: c.connection_id }) }, "Edit");
    const devices =
      kind && kind.supports_browse
        ? h("button.browse", { type: "button", onclick: () => ctx.go("connections", { devices: c.connection_id }) }, "Import devices")
        : null;
    const del = h("button.delete", { type: "button", onclick: confirm }, "Delete");
    function confirm() {
      box.replaceChildren(
        h("span.confirm", `Delete ${c.label}? Its devices stay, unlinked.`),
        h("button.danger.confirm-delete", { type: "button", onclick: () => act(() => api.del(`/api/connections/${c.connection_id}`)) }, "Delete"),
        h("button.cancel", { type: "button", onclick: () => box.replaceChildren(toggle, edit, devices || "", del) }, "Cancel"),
      );
    }
    box.append(toggle, edit, devices || "", del);
    return box;
  }

  const tick = () => {
    timer = setTimeout(async () => {
      await load().catch(() => {});
      if (!stopped) tick();
    }, REFRESH_MS);
  };
  load()
    .then(tick)
    .catch((error) => {
      if (!stopped) body.replaceChildren(h("p.error", `The connections could not be loaded: ${error.message}`));
    });
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
