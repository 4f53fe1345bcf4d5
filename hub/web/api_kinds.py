"""Source kinds: what an "add connection" form is drawn from."""

from __future__ import annotations

from typing import Any

from hub.source import Source, describe_fields
from hub.web.auth import Access
from hub.web.errors import not_found
from hub.web.routing import ApiRequest, ApiRoute
from hub.web.schemas import CadenceOut, FieldOut, KindList, KindOut


def kind_out(hub: Any, cls: type[Source[Any, Any]]) -> KindOut:
    return KindOut(
        kind=cls.kind,
        title=cls.title,
        group=cls.group,
        description=cls.description,
        plugin=hub.registry.owners.get(("sources", cls.kind)),
        supports_browse=cls.supports_browse,
        cadence=CadenceOut(**cls.cadence.as_dict()),
        credentials=[FieldOut(**f.as_dict()) for f in describe_fields(cls.Credentials)],
        options=[FieldOut(**f.as_dict()) for f in describe_fields(cls.Options)],
    )


async def list_kinds(req: ApiRequest) -> KindList:
    sources = req.hub.registry.sources
    return KindList(kinds=[kind_out(req.hub, sources[k]) for k in sorted(sources)])


async def get_kind(req: ApiRequest) -> KindOut:
    kind = req.request.path_params["kind"]
    cls = req.hub.registry.sources.get(kind)
    if cls is None:
        raise not_found(f"no source kind {kind!r} is installed")
    return kind_out(req.hub, cls)


ROUTES = [
    ApiRoute(
        "GET",
        "/api/source-kinds",
        list_kinds,
        Access.USER,
        "List the installed source kinds",
        "source kinds",
        response=KindList,
        description="Each kind with its credential and option fields (secret ones are "
        "write-only), whether its remote devices can be browsed, and its polling cadence.",
    ),
    ApiRoute(
        "GET",
        "/api/source-kinds/{kind}",
        get_kind,
        Access.USER,
        "Describe one source kind",
        "source kinds",
        response=KindOut,
        errors=(404,),
    ),
]
