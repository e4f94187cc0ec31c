"""The Router contract shared by every exchange type, and the binding bookkeeping they all
need (identity, idempotency, per-destination removal).  Subclasses keep their own index
in step through ``_index_add``/``_index_remove`` and implement ``route``."""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import Collection, Hashable, Iterator, Mapping
from typing import Any, ClassVar, Self

from exchanges.explain import BindingVerdict
from exchanges.values import Form, freeze_arguments


class InvalidBinding(Exception):
    """A binding the exchange type refuses; the text becomes a 406 PRECONDITION_FAILED."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


# (destination, binding key, frozen arguments): RabbitMQ's notion of "the same binding".
BindingId = tuple[Hashable, str, Form]


class Router(ABC):
    """Routing table of one exchange.  Synchronous and free of I/O; not thread-safe."""

    type_name: ClassVar[str]
    # Routes by the publish's routing key alone, ignoring the CC and BCC keys.
    only_first_routing_key: ClassVar[bool] = False

    def __init__(self) -> None:
        # Insertion-ordered; values are the caller's arguments (deep-copied at bind time).
        self._bindings: dict[BindingId, dict[str, Any]] = {}
        self._by_destination: dict[Hashable, dict[BindingId, None]] = {}

    @classmethod
    def for_exchange(cls, arguments: Mapping[str, Any]) -> Self:
        """The router of an exchange declared with `arguments`; most types do not read them."""
        return cls()

    # -- binding management -------------------------------------------------------------

    def bind(
        self,
        destination: Hashable,
        binding_key: str,
        arguments: Mapping[str, Any] | None = None,
    ) -> bool:
        """Add a binding; False if exactly this binding already existed (bind is idempotent)."""
        args = copy.deepcopy(dict(arguments or {}))
        self.validate_binding(binding_key, args)
        binding_id = (destination, binding_key, freeze_arguments(args))
        if binding_id in self._bindings:
            return False
        self._bindings[binding_id] = args
        self._by_destination.setdefault(destination, {})[binding_id] = None
        self._index_add(binding_id, args)
        return True

    def unbind(
        self,
        destination: Hashable,
        binding_key: str,
        arguments: Mapping[str, Any] | None = None,
    ) -> bool:
        """Remove a binding; False if it was not there."""
        binding_id = (destination, binding_key, freeze_arguments(arguments or {}))
        if binding_id not in self._bindings:
            return False
        self._forget(binding_id)
        return True

    def remove_destination(self, destination: Hashable) -> int:
        """Drop every binding to ``destination`` (e.g. its queue was deleted)."""
        ids = self._by_destination.get(destination)
        if not ids:
            return 0
        count = len(ids)
        for binding_id in list(ids):
            self._forget(binding_id)
        return count

    def _forget(self, binding_id: BindingId) -> None:
        args = self._bindings.pop(binding_id)
        destination = binding_id[0]
        ids = self._by_destination[destination]
        del ids[binding_id]
        if not ids:
            del self._by_destination[destination]
        self._index_remove(binding_id, args)

    # -- inspection ---------------------------------------------------------------------

    def bindings(self) -> Iterator[tuple[Hashable, str, dict[str, Any]]]:
        """(destination, binding key, arguments) in the order they were bound."""
        for (destination, key, _), args in list(self._bindings.items()):
            yield destination, key, args

    def has_binding(
        self,
        destination: Hashable,
        binding_key: str,
        arguments: Mapping[str, Any] | None = None,
    ) -> bool:
        """Whether exactly this binding exists (as unbind would find it)."""
        return (destination, binding_key, freeze_arguments(arguments or {})) in self._bindings

    def has_bindings_to(self, destination: Hashable) -> bool:
        return destination in self._by_destination

    def __len__(self) -> int:
        return len(self._bindings)

    def explain(
        self, routing_key: str, headers: Mapping[str, Any] | None = None
    ) -> list[BindingVerdict]:
        """One verdict per binding, in binding order, saying whether and why it matched."""
        return [
            self._verdict(destination, key, args, routing_key, headers)
            for (destination, key, _), args in self._bindings.items()
        ]

    # -- per exchange type --------------------------------------------------------------

    @classmethod
    def validate_binding(cls, binding_key: str, arguments: Mapping[str, Any]) -> None:
        """Raise InvalidBinding if this exchange type refuses the binding.  Most accept all."""
        return None

    @abstractmethod
    def route(
        self, routing_key: str, headers: Mapping[str, Any] | None = None
    ) -> Collection[Hashable]:
        """Distinct destinations for a message.  The hot path: called once per publish.
        The returned collection is never mutated by the router afterwards."""

    @abstractmethod
    def _index_add(self, binding_id: BindingId, arguments: dict[str, Any]) -> None: ...

    @abstractmethod
    def _index_remove(self, binding_id: BindingId, arguments: dict[str, Any]) -> None: ...

    @abstractmethod
    def _verdict(
        self,
        destination: Hashable,
        binding_key: str,
        arguments: dict[str, Any],
        routing_key: str,
        headers: Mapping[str, Any] | None,
    ) -> BindingVerdict: ...
