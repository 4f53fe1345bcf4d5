"""Tenancy: clients (administrator only), users, API tokens and "who am I".

* Clients: the administrator lists, creates and deletes them.
* Users: the administrator manages every client's users (and other administrators); a
  manager lists, creates, renames, re-roles (manager or viewer) and deletes the users of
  its own client.
* Tokens: everybody lists, creates and deletes their own; a manager also those of its
  client's users, the administrator anybody's.  The token itself is answered once, at
  creation; only its hash is kept.  A token may expire (``expires_at``, set when it is
  created); an expired token is refused like a revoked one.
"""

from __future__ import annotations

from hub.models import ApiToken, Client, Role, User
from hub.passwords import hash_password_async, password_problem
from hub.store import NotFound
from hub.web.auth import Access, filter_client, owning_client
from hub.web.errors import forbidden, invalid
from hub.web.routing import ApiRequest, ApiRoute
from hub.web.schemas import (
    ClientCreate,
    ClientFilter,
    ClientList,
    ClientOut,
    ClientUpdate,
    Me,
    TokenCreate,
    TokenCreated,
    TokenFilter,
    TokenList,
    TokenOut,
    UserCreate,
    UserList,
    UserOut,
    UserUpdate,
)


def client_out(client: Client) -> ClientOut:
    return ClientOut.model_validate(client.model_dump())


def user_out(user: User) -> UserOut:
    shown = user.model_dump(exclude={"password_hash"})
    return UserOut.model_validate({**shown, "has_password": user.password_hash is not None})


def token_out(token: ApiToken) -> TokenOut:
    return TokenOut.model_validate(token.model_dump(exclude={"token_hash"}))


# -- clients ---------------------------------------------------------------------------
async def list_clients(req: ApiRequest) -> ClientList:
    clients = await req.run(req.hub.store.list_clients)
    return ClientList(clients=[client_out(c) for c in clients])


async def create_client(req: ApiRequest) -> ClientOut:
    body = req.body_as(ClientCreate)
    client = await req.run(
        req.hub.store.create_client,
        body.name,
        positions_retention_days=body.positions_retention_days,
        alerts_retention_days=body.alerts_retention_days,
    )
    return client_out(client)


async def update_client(req: ApiRequest) -> ClientOut:
    fields = req.body_as(ClientUpdate).changes()
    client = await req.run(req.hub.store.update_client, req.path_int("id"), **fields)
    return client_out(client)


async def delete_client(req: ApiRequest) -> None:
    client_id = req.path_int("id")
    store = req.hub.store
    await req.run(store.get_client, client_id)
    connections = await req.run(store.list_connections, client_id)
    await req.run(store.delete_client, client_id)
    for conn in connections:  # their runners stop
        await req.hub.reload_connection(conn.id or 0)


# -- users -----------------------------------------------------------------------------
async def list_users(req: ApiRequest) -> UserList:
    client_id = filter_client(req.principal, req.query_as(ClientFilter).client_id)
    users = await req.run(req.hub.store.list_users, client_id)
    return UserList(users=[user_out(u) for u in users])


async def create_user(req: ApiRequest) -> UserOut:
    body = req.body_as(UserCreate)
    me = req.principal
    if body.role == Role.ADMIN.value:
        if not me.is_admin:
            raise forbidden("only the administrator may create administrators", "role")
        client_id = body.client_id  # the store refuses an administrator with a client
    else:
        client_id = await owning_client(req.hub, me, body.client_id)
    hashed = None
    if body.password is not None:
        problem = password_problem(body.password)
        if problem:
            raise invalid("password", problem)
        hashed = await hash_password_async(body.password)
    user = await req.run(req.hub.store.create_user, body.name, body.role, client_id, hashed)
    return user_out(user)


async def update_user(req: ApiRequest) -> UserOut:
    user_id = req.path_int("id")
    fields = req.body_as(UserUpdate).model_dump(exclude_none=True)
    if "role" in fields and user_id == req.principal.user_id:
        raise forbidden("you cannot change your own role", "role")
    user = await req.run(req.hub.store.update_user, user_id, req.scope, **fields)
    return user_out(user)


async def delete_user(req: ApiRequest) -> None:
    user_id = req.path_int("id")
    if user_id == req.principal.user_id:
        raise forbidden("you cannot delete yourself", "id")
    await req.run(req.hub.store.delete_user, user_id, req.scope)


# -- tokens ----------------------------------------------------------------------------
async def _token_owner(req: ApiRequest, user_id: int | None) -> int:
    """Whose tokens the caller acts on: its own, or (manager, admin) a user it manages."""
    me = req.principal
    if user_id is None or user_id == me.user_id:
        return me.user_id
    if not me.can_write:
        raise forbidden("you may only manage your own tokens", "user_id")
    try:
        await req.run(req.hub.store.get_user, user_id, me.scope)
    except NotFound:
        raise NotFound(f"user {user_id} not found") from None
    return user_id


async def _managed_user_ids(req: ApiRequest) -> list[int] | None:
    """The users whose tokens the caller may delete (``None``: everybody's)."""
    me = req.principal
    if me.is_admin:
        return None
    if not me.can_write:
        return [me.user_id]
    return [u.id or 0 for u in await req.run(req.hub.store.list_users, me.client_id)]


async def list_tokens(req: ApiRequest) -> TokenList:
    owner = await _token_owner(req, req.query_as(TokenFilter).user_id)
    tokens = await req.run(req.hub.store.list_tokens, [owner])
    return TokenList(tokens=[token_out(t) for t in tokens])


async def create_token(req: ApiRequest) -> TokenCreated:
    body = req.body_as(TokenCreate)
    owner = await _token_owner(req, body.user_id)
    row, plain = await req.run(
        req.hub.store.create_token, owner, body.name, body.scope, expires_at=body.expires_at
    )
    return TokenCreated(**token_out(row).model_dump(), token=plain)


async def delete_token(req: ApiRequest) -> None:
    user_ids = await _managed_user_ids(req)
    await req.run(req.hub.store.delete_token, req.path_int("id"), user_ids)


async def me(req: ApiRequest) -> Me:
    p = req.principal
    user = await req.run(req.hub.store.get_user, p.user_id)
    client = await req.run(req.hub.store.get_client, p.client_id) if p.client_id else None
    return Me(
        user=user_out(user),
        token_id=p.token_id,
        client=client_out(client) if client else None,
        can_write=p.can_write,
        is_admin=p.is_admin,
    )


TAG = "tenancy"
RETENTION_NOTE = (
    "`positions_retention_days` and `alerts_retention_days` (1 to 36500, or `null`: "
    "forever) limit how long history is kept; the hub deletes older rows in the background "
    "(every `retention_every_s`), keeping each device's latest position and the positions "
    "its sinks have yet to deliver."
)
ROUTES = [
    ApiRoute("GET", "/api/me", me, Access.USER, "Who the token belongs to", TAG, response=Me),
    ApiRoute("GET", "/api/clients", list_clients, Access.ADMIN, "List clients", TAG,
             response=ClientList),
    ApiRoute("POST", "/api/clients", create_client, Access.ADMIN, "Create a client", TAG,
             body=ClientCreate, response=ClientOut, status=201, errors=(409, 422),
             description=RETENTION_NOTE),
    ApiRoute("PATCH", "/api/clients/{id:int}", update_client, Access.ADMIN,
             "Rename a client, set its time zone or its retention", TAG, body=ClientUpdate,
             response=ClientOut, errors=(404, 409, 422),
             description="Rule schedules are read in the client's `timezone` (IANA). "
             + RETENTION_NOTE),
    ApiRoute("DELETE", "/api/clients/{id:int}", delete_client, Access.ADMIN,
             "Delete a client with all its users, connections, devices and positions", TAG,
             status=204, errors=(404,)),
    ApiRoute("GET", "/api/users", list_users, Access.MANAGER, "List users", TAG,
             query=ClientFilter, response=UserList,
             description="A manager sees its own client's users."),
    ApiRoute("POST", "/api/users", create_user, Access.MANAGER, "Create a user", TAG,
             body=UserCreate, response=UserOut, status=201, errors=(409, 422),
             description="A manager creates managers and viewers of its own client; the "
             "administrator names the client, or creates another administrator. With "
             "`password`, the user can sign in to the dashboard at once."),
    ApiRoute("PATCH", "/api/users/{id:int}", update_user, Access.MANAGER,
             "Rename a user or change its role", TAG, body=UserUpdate, response=UserOut,
             errors=(403, 404, 409, 422),
             description="A manager changes its own client's users (managers and viewers); "
             "nobody changes their own role.  The user's open live sockets are closed "
             "(4003) when its role changes."),
    ApiRoute("DELETE", "/api/users/{id:int}", delete_user, Access.MANAGER,
             "Delete a user and its tokens", TAG, status=204, errors=(403, 404, 409),
             description="A manager deletes its own client's users; the administrator "
             "anybody but the last administrator, and nobody deletes themselves."),
    ApiRoute("GET", "/api/tokens", list_tokens, Access.USER, "List API tokens", TAG,
             query=TokenFilter, response=TokenList,
             description="Your own, or (manager, administrator) those of `user_id`."),
    ApiRoute("POST", "/api/tokens", create_token, Access.USER, "Create an API token", TAG,
             body=TokenCreate, body_required=False, response=TokenCreated, status=201,
             errors=(404, 422),
             description="The token is in this answer only; it cannot be shown again. "
             "With `expires_at` it stops working at that time."),
    ApiRoute("DELETE", "/api/tokens/{id:int}", delete_token, Access.USER,
             "Revoke an API token", TAG, status=204, errors=(404,),
             description="Your own; a manager also its client's users' tokens."),
]  # fmt: skip
