"""Direct exchange: a message goes to bindings whose key equals its routing key exactly."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any, ClassVar

from exchanges.base import BindingId, Router
from exchanges.explain import BindingVerdict, quote


class DirectRouter(Router):
    type_name: ClassVar[str] = "direct"

    def __init__(self) -> None:
        super().__init__()
        # A destination may hold several bindings with one key (differing arguments), so count.
        self._counts: dict[str, dict[Hashable, int]] = {}
        # Precomputed answers so route() is one dict lookup returning an immutable tuple.
        self._routes: dict[str, tuple[Hashable, ...]] = {}

    def route(
        self, routing_key: str, headers: Mapping[str, Any] | None = None
    ) -> tuple[Hashable, ...]:
        return self._routes.get(routing_key, ())

    def _index_add(self, binding_id: BindingId, arguments: dict[str, Any]) -> None:
        destination, key, _ = binding_id
        counts = self._counts.setdefault(key, {})
        counts[destination] = counts.get(destination, 0) + 1
        if counts[destination] == 1:
            self._routes[key] = tuple(counts)

    def _index_remove(self, binding_id: BindingId, arguments: dict[str, Any]) -> None:
        destination, key, _ = binding_id
        counts = self._counts[key]
        counts[destination] -= 1
        if counts[destination]:
            return
        del counts[destination]
        if counts:
            self._routes[key] = tuple(counts)
        else:
            del self._counts[key], self._routes[key]

    def _verdict(
        self,
        destination: Hashable,
        binding_key: str,
        arguments: dict[str, Any],
        routing_key: str,
        headers: Mapping[str, Any] | None,
    ) -> BindingVerdict:
        matched = routing_key == binding_key
        sign = "==" if matched else "!="
        reason = f"routing key {quote(routing_key)} {sign} binding key {quote(binding_key)}"
        return BindingVerdict(destination, binding_key, arguments, matched, reason)
