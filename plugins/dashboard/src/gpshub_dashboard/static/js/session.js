// The browser session: POST/GET/DELETE /api/session, and who the user is (/api/me).
import { api, setCsrfToken } from "./api.js";

export const session = {
  user: null,
  client: null,
  can_write: false,
  is_admin: false,
  timezone: undefined, // the client's IANA zone; undefined: the browser's
};

async function load(answer) {
  setCsrfToken(answer.csrf_token);
  const me = await api.get("/api/me");
  Object.assign(session, {
    user: me.user,
    client: me.client,
    can_write: !!me.can_write,
    is_admin: !!me.is_admin,
    timezone: (me.client && me.client.timezone) || undefined,
  });
  return session;
}

/** The current session, or null when signed out. */
export async function resume() {
  try {
    return await load(await api.get("/api/session", { quiet401: true }));
  } catch (error) {
    if (error.status === 401 || error.status === 404) return null;
    throw error;
  }
}

export async function signIn(name, password, client) {
  const body = { name, password };
  if (client) body.client = client;
  return load(await api.post("/api/session", body, { quiet401: true }));
}

export async function signOut() {
  try {
    await api.del("/api/session", { quiet401: true });
  } finally {
    setCsrfToken(null);
    Object.assign(session, { user: null, client: null, can_write: false, is_admin: false });
  }
}
