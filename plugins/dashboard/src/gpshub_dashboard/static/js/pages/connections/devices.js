// Browse a connection's remote devices with checkboxes and import the chosen ones.
import { api } from "../../api.js";
import { h } from "../../dom.js";

export function remoteDevices(view, conn, { onDone }) {
  const status = h("p.result#remote-status", { role: "status" }, "Asking the upstream for its devices…");
  const list = h("ul.remote-list#remote-list");
  const importButton = h("button.primary#remote-import", { type: "button", disabled: true, onclick: doImport }, "Import selected");
  const all = h("input#remote-all", { type: "checkbox", onchange: () => toggleAll(all.checked) });
  const box = h(
    "section.remote",
    h("h2", `Devices of ${conn.label}`),
    h("label.check", all, " Select all not yet imported"),
    list,
    status,
    h("div.actions", importButton, h("button#remote-done", { type: "button", onclick: () => onDone() }, "Done")),
  );
  view.append(box);
  let closed = false;

  const boxes = () => [...list.querySelectorAll("input[data-upstream-id]:not(:disabled)")];
  const chosen = () => boxes().filter((b) => b.checked);
  const refresh = () => {
    importButton.disabled = chosen().length === 0;
    importButton.textContent = chosen().length ? `Import ${chosen().length} selected` : "Import selected";
  };
  function toggleAll(on) {
    for (const b of boxes()) b.checked = on;
    refresh();
  }

  async function load() {
    try {
      const answer = await api.get(`/api/connections/${conn.id}/remote-devices`);
      if (closed) return;
      draw(answer.devices);
    } catch (error) {
      if (closed) return;
      status.className = "result error";
      status.textContent = `The devices could not be listed: ${error.message}`;
    }
  }

  function draw(devices) {
    list.replaceChildren(
      ...devices.map((d) => {
        const id = `remote-${d.upstream_id}`.replace(/[^A-Za-z0-9_-]/g, "_");
        const imported = d.imported_as !== null && d.imported_as !== undefined;
        const check = h("input", {
          id,
          type: "checkbox",
          checked: imported,
          disabled: imported,
          dataset: { upstreamId: d.upstream_id },
          onchange: refresh,
        });
        const details = [d.license_plate, d.imei && `IMEI ${d.imei}`, `upstream id ${d.upstream_id}`].filter(Boolean).join(" · ");
        return h(
          "li.remote-device",
          { dataset: { upstreamId: d.upstream_id, imported: imported ? "1" : "" } },
          h("label", { for: id }, check, h("span.name", d.name), h("small.help", details), imported ? h("span.tag", "imported") : null),
        );
      }),
    );
    status.className = "result";
    const left = devices.filter((d) => d.imported_as === null || d.imported_as === undefined).length;
    status.textContent = devices.length
      ? `${devices.length} devices upstream, ${devices.length - left} imported.`
      : "The account has no devices.";
    refresh();
  }

  async function doImport() {
    const ids = chosen().map((b) => b.dataset.upstreamId);
    importButton.disabled = true;
    try {
      const outcome = await api.post(`/api/connections/${conn.id}/import`, { upstream_ids: ids });
      if (closed) return;
      await load();
      status.className = "result ok";
      status.textContent = `Imported ${outcome.created} device${outcome.created === 1 ? "" : "s"}` + (outcome.existing ? ` (${outcome.existing} already imported).` : ".");
    } catch (error) {
      status.className = "result error";
      status.textContent = `Import failed: ${error.message}`;
      refresh();
    }
  }

  load();
  return () => {
    closed = true;
  };
}
