"""The kinds plugins registered: sources, sinks and formats, each under a unique name."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pluggy
from pydantic import BaseModel

from hub.errors import PluginError
from hub.formats import PURPOSES, Format
from hub.plugins import PluginInfo
from hub.sink import Sink
from hub.source import Cadence, Source


@dataclass
class Registry:
    sources: dict[str, type[Source[Any, Any]]] = field(default_factory=dict)
    sinks: dict[str, type[Sink]] = field(default_factory=dict)
    formats: dict[str, type[Format]] = field(default_factory=dict)
    owners: dict[tuple[str, str], str] = field(default_factory=dict)
    geocoder: Callable[[float, float], str | None] | None = None
    geocoder_owner: str | None = None

    def source(self, kind: str) -> type[Source[Any, Any]]:
        try:
            return self.sources[kind]
        except KeyError:
            known = ", ".join(sorted(self.sources)) or "none installed"
            raise KeyError(f"unknown source kind {kind!r} (known: {known})") from None

    @classmethod
    def collect(cls, pm: pluggy.PluginManager, infos: dict[str, PluginInfo]) -> Registry:
        """Call each plugin's ``register_*`` hooks once and check what they register."""
        reg = cls()
        reg._builtins()
        for group, base, check in (
            ("sources", Source, _check_source),
            ("sinks", Sink, _check_sink),
            ("formats", Format, _check_format),
        ):
            hook = getattr(pm.hook, f"register_{group}")
            for impl in hook.get_hookimpls():
                _returns_nothing(
                    impl.function(
                        register=reg._registrar(group, base, check, impl.plugin_name, infos)
                    ),
                    impl.plugin_name,
                    f"register_{group}",
                )
        for impl in pm.hook.register_geocoder.get_hookimpls():
            _returns_nothing(
                impl.function(register=reg._geocoder_registrar(impl.plugin_name)),
                impl.plugin_name,
                "register_geocoder",
            )
        return reg

    def _builtins(self) -> None:
        """What the core itself provides: the HTTP webhook sink and gpshub's own formats."""
        from hub.native_formats import GpshubAlert, GpshubLocations
        from hub.webhook import WebhookSink

        for group, klass in (
            ("sinks", WebhookSink),
            ("formats", GpshubLocations),
            ("formats", GpshubAlert),
        ):
            getattr(self, group)[klass.kind] = klass
            self.owners[(group, klass.kind)] = "gpshub"

    def _geocoder_registrar(self, plugin: str) -> Callable[[Any], None]:
        def register(place_name: Any) -> None:
            if not callable(place_name):
                raise PluginError(f"plugin {plugin!r} registered a geocoder that is not callable")
            if self.geocoder is not None:
                raise PluginError(
                    f"plugins {self.geocoder_owner!r} and {plugin!r} both register a reverse "
                    "geocoder; disable one of them"
                )
            self.geocoder, self.geocoder_owner = place_name, plugin

        return register

    def _registrar(
        self,
        group: str,
        base: type,
        check: Callable[[type, str], None],
        plugin: str,
        infos: dict[str, PluginInfo],
    ) -> Callable[[type], None]:
        table: dict[str, Any] = getattr(self, group)

        def register(klass: type) -> None:
            if not (isinstance(klass, type) and issubclass(klass, base)):
                raise PluginError(
                    f"plugin {plugin!r} registered {klass!r} as one of its {group}, "
                    f"but it is not a subclass of {base.__module__}.{base.__name__}"
                )
            kind = getattr(klass, "kind", None)
            if not isinstance(kind, str) or not kind:
                raise PluginError(f"plugin {plugin!r}: {klass.__name__} has no 'kind' name")
            check(klass, plugin)
            if kind in table:
                other = self.owners[(group, kind)]
                raise PluginError(
                    f"plugins {other!r} and {plugin!r} both register the {group[:-1]} kind "
                    f"{kind!r}; disable one of them"
                )
            table[kind] = klass
            self.owners[(group, kind)] = plugin
            if plugin in infos:
                infos[plugin].kinds[group].append(kind)

        return register


def _returns_nothing(result: object, plugin: str, hook: str) -> None:
    """A ``register_*`` hook registers by calling ``register``: one that returns what it
    means to register (a list of classes, say) would register nothing, silently."""
    if result is None:
        return
    shown = repr(result)
    shown = shown if len(shown) <= 120 else shown[:117] + "..."
    raise PluginError(
        f"plugin {plugin!r}: its {hook} hook returned {shown} instead of calling "
        f"register(...): call register(item) for each item (the hook's return value is "
        "ignored)"
    )


def _check_source(klass: type, plugin: str) -> None:
    for attr in ("title", "Credentials"):
        if not hasattr(klass, attr):
            raise PluginError(f"plugin {plugin!r}: source {klass.__name__} lacks {attr!r}")
    for attr in ("Credentials", "Options"):
        model = getattr(klass, attr)
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            raise PluginError(
                f"plugin {plugin!r}: {klass.__name__}.{attr} must be a pydantic model"
            )
    if not isinstance(klass.cadence, Cadence):
        raise PluginError(f"plugin {plugin!r}: {klass.__name__}.cadence must be a Cadence")


def _check_sink(klass: type, plugin: str) -> None:
    settings = getattr(klass, "Settings", None)
    if not (isinstance(settings, type) and issubclass(settings, BaseModel)):
        raise PluginError(f"plugin {plugin!r}: sink {klass.__name__} lacks a pydantic 'Settings'")
    if getattr(klass, "purpose", None) not in (None, *PURPOSES):
        raise PluginError(
            f"plugin {plugin!r}: sink {klass.__name__}.purpose must be one of {PURPOSES} or None"
        )


def _check_format(klass: type, plugin: str) -> None:
    if "encode" not in vars(klass) and klass.encode is Format.encode:
        raise PluginError(f"plugin {plugin!r}: format {klass.__name__} does not implement encode")
    if getattr(klass, "purpose", None) not in PURPOSES:
        raise PluginError(
            f"plugin {plugin!r}: format {klass.__name__}.purpose must be one of {PURPOSES}"
        )
    batch = getattr(klass, "max_batch", None)
    if not isinstance(batch, int) or batch < 1:
        raise PluginError(f"plugin {plugin!r}: format {klass.__name__}.max_batch must be >= 1")
    options = getattr(klass, "Options", None)
    if not (isinstance(options, type) and issubclass(options, BaseModel)):
        raise PluginError(
            f"plugin {plugin!r}: format {klass.__name__}.Options must be a pydantic model"
        )
