// Users (managers and the administrator): the client's users with their role; add one
// with an initial password, set a user's password, change a role, delete. Only what the
// API lets the role do is offered: nobody changes their own role, password (that is the
// Account page) or deletes themselves here.
import { api, query } from "../api.js";
import { h, notice } from "../dom.js";
import { dateTime } from "../format.js";
import { ROLES, passwordSetForm, userForm } from "./users/forms.js";

export const title = "Users";

export function mount(view, ctx) {
  view.classList.add("ar-page");
  let closed = false;
  const undo = () => {
    closed = true;
    view.classList.remove("ar-page");
    delete view.dataset.ready;
  };
  if (!ctx.session.can_write) {
    view.append(h("div.ar-page-head", h("h1", "Users")), h("p.empty#users-denied", "Only managers and administrators manage users. Your own password and tokens are on the Account page."));
    return undo;
  }
  const me = ctx.session.user;
  const admin = ctx.session.is_admin && !ctx.session.client;
  const clientPick = admin ? h("select#users-client", { "aria-label": "Client", onchange: () => refresh() }) : null;
  const formSlot = h("div#user-form-slot");
  const done = h("p.result.ok#users-done", { role: "status", hidden: true });
  const say = (text) => {
    done.textContent = text;
    done.hidden = !text;
  };
  const list = h("tbody#user-list");
  const empty = h("p.empty#users-empty", { hidden: true }, "No users.");
  const add = h("button.primary#user-new", { type: "button", onclick: () => openAdd() }, "Add user");
  const table = h("table.ar-table#users", h("thead", h("tr", h("th", "Name"), h("th", "Role"), h("th", "Password"), h("th", "Created"), h("th", ""))), list);
  view.append(h("div.ar-page-head", h("h1", "Users"), clientPick ? h("label.ar-check", "Client", clientPick) : null, add), done, formSlot, h("div.ar-scroll", table), empty);

  const clientId = () => (clientPick ? Number(clientPick.value) : undefined);
  const close = () => formSlot.replaceChildren();
  const focus = (selector) => formSlot.querySelector(selector).focus();

  function openAdd() {
    const save = async ({ name, role, password }) => {
      const body = { name, role, password }; // one request: no user is left without it
      if (clientPick) body.client_id = clientId();
      await api.post("/api/users", body);
      await refresh();
    };
    say("");
    formSlot.replaceChildren(userForm(save, close));
    focus("#user-name");
  }

  function openPassword(user) {
    const save = async (password) => {
      await api.put(`/api/users/${user.id}/password`, { password });
      say(`The password of “${user.name}” is set; its sessions were signed out.`);
      await refresh();
    };
    say("");
    formSlot.replaceChildren(passwordSetForm(user, save, close));
    focus("#user-pw");
  }

  function row(user) {
    const self = user.id === me.id;
    const changeRole = async (event) => {
      const select = event.target;
      select.disabled = true;
      try {
        await api.patch(`/api/users/${user.id}`, { role: select.value });
        user.role = select.value;
      } catch (e) {
        select.value = user.role;
        notice(`Could not change the role: ${e.message}`, "error");
      } finally {
        select.disabled = false;
      }
    };
    const remove = async () => {
      if (!confirm(`Delete the user “${user.name}” and its API tokens?`)) return;
      try {
        await api.del(`/api/users/${user.id}`);
        await refresh();
      } catch (e) {
        notice(`Could not delete the user: ${e.message}`, "error");
      }
    };
    const editable = !self && user.role !== "admin";
    const role = editable
      ? h("select.user-role", { "aria-label": `Role of ${user.name}`, onchange: changeRole }, ROLES.map(([v]) => h("option", { value: v, selected: v === user.role }, v)))
      : user.role;
    const actions = self
      ? h("td.ar-hint", "you: ", h("a", { href: "#/account" }, "your account"))
      : h("td.ar-actions", h("button.user-password", { type: "button", onclick: () => openPassword(user) }, "Set password"), h("button.delete.user-delete", { type: "button", onclick: remove }, "Delete"));
    return h("tr", { dataset: { id: user.id } }, h("td.user-name", user.name), h("td", role), h("td", user.has_password ? "set" : "none"), h("td", dateTime(user.created_at)), actions);
  }

  async function refresh() {
    const { users } = await api.get("/api/users" + query({ client_id: clientId() }));
    if (closed) return;
    list.replaceChildren(...users.map(row));
    empty.hidden = users.length > 0;
  }

  (async () => {
    if (clientPick) {
      const { clients } = await api.get("/api/clients");
      if (closed) return;
      clientPick.replaceChildren(...clients.map((c) => h("option", { value: c.id }, c.name)));
      if (!clients.length) {
        add.disabled = true;
        empty.textContent = "No clients yet.";
        empty.hidden = false;
        view.dataset.ready = "1";
        return;
      }
    }
    await refresh();
    if (!closed) view.dataset.ready = "1";
  })().catch((error) => {
    if (error.status !== 401) notice(`Could not load the users: ${error.message}`, "error");
  });

  return undo;
}
