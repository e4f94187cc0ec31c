"""Fanout exchange: every bound destination gets the message; keys are ignored."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any, ClassVar

from exchanges.base import BindingId, Router
from exchanges.explain import BindingVerdict


class FanoutRouter(Router):
    type_name: ClassVar[str] = "fanout"

    def __init__(self) -> None:
        super().__init__()
        # Bindings per destination (keys/arguments differ but all route the same way).
        self._counts: dict[Hashable, int] = {}
        self._route: tuple[Hashable, ...] = ()

    def route(
        self, routing_key: str, headers: Mapping[str, Any] | None = None
    ) -> tuple[Hashable, ...]:
        return self._route

    def _index_add(self, binding_id: BindingId, arguments: dict[str, Any]) -> None:
        destination = binding_id[0]
        self._counts[destination] = self._counts.get(destination, 0) + 1
        if self._counts[destination] == 1:
            self._route = tuple(self._counts)

    def _index_remove(self, binding_id: BindingId, arguments: dict[str, Any]) -> None:
        destination = binding_id[0]
        self._counts[destination] -= 1
        if not self._counts[destination]:
            del self._counts[destination]
            self._route = tuple(self._counts)

    def _verdict(
        self,
        destination: Hashable,
        binding_key: str,
        arguments: dict[str, Any],
        routing_key: str,
        headers: Mapping[str, Any] | None,
    ) -> BindingVerdict:
        reason = "fanout ignores the routing key: every bound destination gets a copy"
        return BindingVerdict(destination, binding_key, arguments, True, reason)
