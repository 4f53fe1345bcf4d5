// Webhooks: each sink with its state, what it owes, delivered, failed, and its dead
// letters; managers resend or discard dead letters (chosen ones, or all).
import { api } from "../api.js";
import { h, notice } from "../dom.js";
import { ago, dateTime, number } from "../format.js";
import { sinkForm } from "../webhooks/form.js";

export const title = "Webhooks";
const REFRESH_MS = 10000;

/** replaceChildren without the absent ones (it would write "null"). */
function put(el, ...children) {
  el.replaceChildren(...children.filter((c) => c !== null && c !== undefined && c !== false));
}

export function mount(view, ctx) {
  const write = ctx.session.can_write;
  const list = h("div.sinks#sink-list");
  const empty = h("p.empty#sinks-empty", { hidden: true }, "No webhooks yet.");
  view.classList.add("ar-page");
  const formSlot = h("div#sink-form-slot");
  const add = write ? h("button.primary#sink-new", { type: "button", onclick: () => openForm() }, "New webhook") : null;
  const head = h("div.ar-page-head", h("h1", "Webhooks"), add, h("button#sinks-refresh", { type: "button", onclick: () => refresh() }, "Refresh"));
  view.append(head, formSlot, list, empty);
  const cards = new Map(); // sink id → {el, stats, letters}
  let closed = false;

  async function openForm() {
    try {
      const admin = ctx.session.is_admin && !ctx.session.client;
      const [kinds, clients] = await Promise.all([api.get("/api/sink-kinds"), admin ? api.get("/api/clients") : null]);
      if (closed) return;
      // a manager may set up the client's alerts webhook only; location relays are the administrator's
      const offered = ctx.session.is_admin
        ? kinds.kinds
        : kinds.kinds.map((k) => ({ ...k, formats: k.formats.filter((f) => f.purpose === "alerts") })).filter((k) => k.formats.length);
      const close = () => formSlot.replaceChildren();
      const save = async (body) => {
        const saved = await api.post("/api/sinks", body);
        await refresh();
        return saved;
      };
      formSlot.replaceChildren(sinkForm(offered, clients && clients.clients, save, close));
      formSlot.querySelector("#sink-name").focus();
    } catch (error) {
      if (error.status !== 401) notice(`Could not open the form: ${error.message}`, "error");
    }
  }

  const stat = (label, value, name) => h("div.stat", { dataset: { stat: name } }, h("span.stat-value", number(value)), h("span.stat-label", label));

  function card(sink) {
    const letters = h("div.letters", { hidden: true });
    const toggle = h("button.show-letters", { type: "button", onclick: () => (letters.hidden ? openLetters(sink.id) : (letters.hidden = true)) }, "Dead letters");
    const el = h("section.ar-card.sink", { dataset: { id: sink.id } });
    cards.set(sink.id, { el, letters, toggle });
    fill(sink);
    return el;
  }

  function fill(sink) {
    const { el, letters, toggle } = cards.get(sink.id);
    const s = sink.stats || {};
    toggle.disabled = !s.dead_letters;
    put(
      el,
      h(
        "div.sink-head",
        h("h2", sink.name),
        h("span.state", { dataset: { state: sink.state } }, sink.enabled ? sink.state : "disabled"),
        write ? h("label.ar-check", h("input.sink-enabled", { type: "checkbox", checked: sink.enabled, onchange: (e) => enable(sink, e.target) }), "Enabled") : null,
      ),
      h("p.ar-hint", `${sink.kind} · ${sink.format} · ${sink.purpose}${sink.settings && sink.settings.url ? ` · ${sink.settings.url}` : ""}`),
      h("div.stats", stat("owed", s.pending, "pending"), stat("delivered", s.delivered, "delivered"), stat("failed", s.failed, "failed"), stat("dead letters", s.dead_letters, "dead_letters")),
      sink.last_error ? h("p.error.last-error", `Last error: ${sink.last_error}`) : null,
      sink.failing_since ? h("p.ar-hint", `Failing since ${dateTime(sink.failing_since)} (${ago(sink.failing_since)})`) : null,
      sink.next_probe_at ? h("p.ar-hint", `The receiver seems down; next try ${dateTime(sink.next_probe_at)}`) : null,
      h("div.ar-actions", toggle),
      letters,
    );
  }

  async function enable(sink, box) {
    box.disabled = true;
    try {
      fill(await api.patch(`/api/sinks/${sink.id}`, { enabled: box.checked }));
    } catch (error) {
      box.checked = sink.enabled;
      box.disabled = false;
      notice(`Could not change the webhook: ${error.message}`, "error");
    }
  }

  async function openLetters(id) {
    const { letters } = cards.get(id);
    letters.hidden = false;
    letters.replaceChildren(h("p.loading", "Loading…"));
    let page;
    try {
      page = await api.get(`/api/sinks/${id}/dead-letters?limit=200`);
    } catch (error) {
      letters.replaceChildren(h("p.error", `Could not load the dead letters: ${error.message}`));
      return;
    }
    if (closed) return;
    const boxes = [];
    const rows = page.dead_letters.map((d) => {
      const box = write ? h("input.letter-pick", { type: "checkbox", value: d.id, "aria-label": `Dead letter ${d.id}` }) : null;
      if (box) boxes.push(box);
      return h(
        "tr",
        { dataset: { id: d.id } },
        write ? h("td", box) : null,
        h("td", dateTime(d.created_at)),
        h("td", d.device_id ?? "—"),
        h("td", d.attempts),
        h("td", d.status ?? "—"),
        h("td", d.error, d.excerpt ? h("div.ar-hint.excerpt", d.excerpt) : null),
      );
    });
    const act = (verb) => async () => {
      const picked = boxes.filter((b) => b.checked).map((b) => Number(b.value));
      const what = picked.length ? `${picked.length} dead letter(s)` : "all the dead letters";
      if (verb === "discard" && !confirm(`Discard ${what}? They will not be delivered.`)) return;
      try {
        await api.post(`/api/sinks/${id}/dead-letters/${verb}`, picked.length ? { ids: picked } : undefined);
        notice(verb === "resend" ? `Queued ${what} again.` : `Discarded ${what}.`);
        await refresh();
        await openLetters(id);
      } catch (error) {
        notice(`Could not ${verb}: ${error.message}`, "error");
      }
    };
    const more = page.dead_letters.length >= 200 ? h("p.ar-hint", "The oldest 200 are shown; acting with none chosen acts on all.") : null;
    put(
      letters,
      rows.length
        ? h(
            "div.ar-scroll",
            h(
              "table.ar-table.letters-table",
              h("thead", h("tr", write ? h("th", "") : null, h("th", "Since"), h("th", "Device"), h("th", "Attempts"), h("th", "Status"), h("th", "Error"))),
              h("tbody", rows),
            ),
          )
        : h("p.empty", "No dead letters."),
      more,
      write && rows.length
        ? h(
            "div.ar-actions",
            h("button.resend", { type: "button", onclick: act("resend") }, "Resend (chosen, or all)"),
            h("button.discard", { type: "button", onclick: act("discard") }, "Discard (chosen, or all)"),
          )
        : null,
    );
  }

  async function refresh() {
    try {
      const { sinks } = await api.get("/api/sinks");
      if (closed) return;
      for (const sink of sinks) {
        if (cards.has(sink.id)) fill(sink);
        else list.append(card(sink));
      }
      const ids = new Set(sinks.map((s) => s.id));
      for (const [id, c] of cards) if (!ids.has(id)) (c.el.remove(), cards.delete(id));
      empty.hidden = sinks.length > 0;
      // one alerts webhook per client: a manager whose client has it has nothing to add
      if (add) add.hidden = !ctx.session.is_admin && sinks.some((s) => s.purpose === "alerts");
      view.dataset.ready = "1";
    } catch (error) {
      if (error.status !== 401) notice(`Could not load the webhooks: ${error.message}`, "error");
    }
  }
  refresh();
  const timer = setInterval(refresh, REFRESH_MS);

  return () => {
    closed = true;
    clearInterval(timer);
    view.classList.remove("ar-page");
    delete view.dataset.ready;
  };
}
