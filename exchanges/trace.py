"""Why did a message go where it went?  ``trace_route`` records the broker's own routing walk
(``exchanges.walk``) hop by hop, with every router's verdict on each binding, and ``render``
tells the story to a person.

A delayed-message exchange on the way holds the message and routes nothing for now; when the
hold ends the broker routes the released message (its x-delay negated, so it is not held again)
from that exchange by a new walk.  The trace records that walk too, as the continuation of the
hop that held the message, so its final set is every queue the message reaches, now or later.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Hashable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

import attrs

from exchanges.explain import BindingVerdict, quote
from exchanges.values import octets
from exchanges.walk import (
    ROUTING_HEADERS,
    Outcome,
    Routes,
    Walkable,
    WalkObserver,
    routing_keys,
    sender_selected,
)


class ExplainingRouter(Routes, Protocol):
    """A router that can say, binding by binding, why it routed as it did."""

    def explain(
        self, routing_key: str, headers: Mapping[str, Any] | None
    ) -> list[BindingVerdict]: ...


class Traceable(Walkable, Protocol):
    """An exchange the trace can describe."""

    @property
    def type_name(self) -> str: ...

    @property
    def router(self) -> ExplainingRouter: ...


T = TypeVar("T", bound=Traceable)


class Walker(Protocol[T]):
    """The broker's walk with its exchanges bound in: `exchanges.walk.walk` with its lookups."""

    def __call__(
        self,
        start: T,
        keys: Sequence[str],
        headers: Mapping[str, Any] | None,
        *,
        observer: WalkObserver[T] | None = None,
    ) -> Collection[Hashable]: ...


@attrs.frozen
class RouteKey:
    key: str
    origin: str  # "routing key", "CC" or "BCC"

    def __str__(self) -> str:
        label = self.origin if self.origin == "routing key" else f"{self.origin} key"
        return f"{label} {quote(self.key)}"


@attrs.frozen
class Target:
    kind: str  # "exchange", "queue", or a queue of another type ("quorum queue")
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {quote(self.name)}"


@attrs.frozen
class Checked:
    """One binding's verdict, with its destination named."""

    target: Target
    verdict: BindingVerdict


@attrs.frozen
class KeyTrial:
    """One key tried at one exchange: every binding's verdict and what the router routed to."""

    key: RouteKey
    verdicts: tuple[Checked, ...]
    routed: tuple[Target, ...]


@attrs.frozen
class Reached:
    how: str  # "published", "bound" or "alternate"
    via: str | None = None  # the exchange that passed the message on
    binding_keys: tuple[str, ...] = ()  # for "bound": the keys of the bindings that matched


@attrs.frozen
class Handoff:
    """What became of one destination of a hop."""

    target: Target
    outcome: Outcome
    alternate: bool = False  # the hop's alternate exchange, tried because nothing matched
    after_hold: bool = False  # tried when the hop's hold ended (its bindings matched nothing)
    hop: int | None = None  # for "visited": the index in RouteTrace.hops of the hop it led to


@attrs.frozen
class Hop:
    exchange: str
    type_name: str
    reached: Reached
    trials: tuple[KeyTrial, ...]
    matched: tuple[Target, ...]  # what its own router routed to, over all keys tried
    alternate_exchange: str | None
    used_alternate: bool
    handoffs: tuple[Handoff, ...]
    untried: tuple[RouteKey, ...] = ()  # CC/BCC keys this exchange type does not look at
    # Held before its bindings route it (a delayed-message exchange); its trials and the
    # handoffs after its alternate's are then those of the walk that routes it afterwards.
    held_ms: int = 0


@attrs.frozen
class RouteTrace:
    exchange: str
    routing_key: str
    headers: Mapping[str, Any] | None
    keys: tuple[RouteKey, ...]
    # In the order they are visited; a held message's later hops follow the hop that held it.
    hops: tuple[Hop, ...]
    queues: tuple[str, ...]  # each once, sorted by name as RabbitMQ returns them

    @property
    def routed(self) -> bool:
        return bool(self.queues)


def route_keys(routing_key: str, headers: Mapping[str, Any] | None) -> tuple[RouteKey, ...]:
    """The keys the broker routes by (`routing_keys`), each with where it came from."""
    cc = set(sender_selected(headers, "CC")) if headers else set()
    return tuple(
        RouteKey(key, "routing key" if i == 0 else "CC" if key in cc else "BCC")
        for i, key in enumerate(routing_keys(routing_key, headers))
    )


def trace_route(
    start: T,
    routing_key: str,
    headers: Mapping[str, Any] | None,
    *,
    walk: Walker[T],
    destination_name: Callable[[Hashable], tuple[str, str]],
    released_headers: Callable[[Mapping[str, Any] | None], Mapping[str, Any] | None],
) -> RouteTrace:
    """Route a message from `start` with the broker's `walk`, recording why at each hop.

    `destination_name` names what a router holds as ("queue", name) or ("exchange", name);
    `released_headers` are the headers a held message is routed with when its hold ends.
    Raises InvalidRoutingHeader for a CC or BCC header the publish would be refused for.
    """
    keys = route_keys(routing_key, headers)
    key_names = [key.key for key in keys]
    routed_headers = headers  # what routers see: RabbitMQ strips BCC first
    if headers and "BCC" in headers:
        routed_headers = {k: v for k, v in headers.items() if k != "BCC"}
    recorder: _Recorder[T] = _Recorder(keys, destination_name)
    recorder.arrive(start, Reached("published"))
    queues = dict.fromkeys(walk(start, key_names, routed_headers, observer=recorder))
    for exchange, hop in recorder.take_holds():
        recorder.resume(hop)
        released = released_headers(routed_headers)
        queues.update(dict.fromkeys(walk(exchange, key_names, released, observer=recorder)))
    names = {destination_name(queue)[1] for queue in queues}
    return RouteTrace(
        start.name,
        routing_key,
        headers,
        keys,
        recorder.hops(),
        tuple(sorted(names, key=octets)),
    )


@attrs.define(eq=False)
class _Draft:
    """A hop while the walk is still at it."""

    exchange: str
    type_name: str
    reached: Reached
    alternate_exchange: str | None
    trials: list[KeyTrial] = attrs.Factory(list)
    matched: dict[Target, None] = attrs.Factory(dict)
    handoffs: list[tuple[Handoff, _Draft | None]] = attrs.Factory(list)
    held_ms: int = 0
    used_alternate: bool = False
    resumed: bool = False  # its hold is over: the walk of the released message goes on here
    later: list[_Draft] = attrs.Factory(list)  # the other hops of that walk


class _Recorder(WalkObserver[T]):
    """Builds the hops of a trace from what the walk reports."""

    def __init__(
        self, keys: tuple[RouteKey, ...], destination_name: Callable[[Hashable], tuple[str, str]]
    ) -> None:
        self._keys = {key.key: key for key in keys}
        self._destination_name = destination_name
        self._visits: list[_Draft] = []  # of the walk from the exchange published to
        self._into = self._visits  # where the current walk's hops go
        self._arrivals: dict[T, _Draft] = {}  # reached and not yet visited, in this walk
        self._current: _Draft | None = None
        self._resuming: _Draft | None = None
        self._holds: list[tuple[T, _Draft]] = []

    def arrive(self, exchange: T, reached: Reached) -> _Draft:
        alternate = exchange.alternate_exchange or None  # "" names none: the walk skips it
        draft = _Draft(exchange.name, exchange.type_name, reached, alternate)
        self._arrivals[exchange] = draft
        return draft

    def take_holds(self) -> list[tuple[T, _Draft]]:
        holds, self._holds = self._holds, []
        return holds

    def resume(self, draft: _Draft) -> None:
        """The next walk routes the message `draft`'s exchange held, now that it is released."""
        self._resuming = draft
        self._into = draft.later
        self._arrivals = {}

    # -- WalkObserver ---------------------------------------------------------------------------

    def visiting(self, exchange: T) -> None:
        if self._resuming is not None:
            self._current, self._resuming = self._resuming, None
            self._current.resumed = True
            return
        self._current = self._arrivals.pop(exchange)
        self._into.append(self._current)

    def held(self, exchange: T, delay_ms: int) -> None:
        assert self._current is not None
        self._current.held_ms = delay_ms
        if self._into is self._visits:  # a released message is not held again
            self._holds.append((exchange, self._current))

    def tried(
        self,
        exchange: T,
        key: str,
        headers: Mapping[str, Any] | None,
        routed: Collection[Hashable],
    ) -> None:
        assert self._current is not None
        verdicts = tuple(
            Checked(self._name(v.destination), v) for v in exchange.router.explain(key, headers)
        )
        targets = tuple(self._name(destination) for destination in routed)
        self._current.trials.append(KeyTrial(self._keys[key], verdicts, targets))
        self._current.matched.update(dict.fromkeys(targets))

    def to_alternate(self, exchange: T, name: str, alternate: T | None, outcome: Outcome) -> None:
        draft = self._current
        assert draft is not None
        draft.used_alternate = True
        onward = None
        if alternate is not None and outcome == "visited":
            onward = self.arrive(alternate, Reached("alternate", exchange.name))
        handoff = Handoff(Target("exchange", name), outcome, True, after_hold=draft.resumed)
        draft.handoffs.append((handoff, onward))

    def to_destination(self, exchange: T, destination: Hashable, outcome: Outcome) -> None:
        draft = self._current
        assert draft is not None
        target = self._name(destination)
        onward = None
        if outcome == "visited":
            how = Reached("bound", exchange.name, _binding_keys(draft, target))
            onward = self.arrive(destination, how)  # type: ignore[arg-type]  # an exchange
        draft.handoffs.append((Handoff(target, outcome), onward))

    # -- the result -----------------------------------------------------------------------------

    def hops(self) -> tuple[Hop, ...]:
        ordered: list[_Draft] = []

        def add(draft: _Draft) -> None:
            ordered.append(draft)
            for later in draft.later:
                add(later)

        for draft in self._visits:
            add(draft)
        index = {id(draft): i for i, draft in enumerate(ordered)}
        keys = tuple(self._keys.values())
        return tuple(_hop(draft, index, keys) for draft in ordered)

    def _name(self, destination: Hashable) -> Target:
        return Target(*self._destination_name(destination))


def _hop(draft: _Draft, index: dict[int, int], keys: tuple[RouteKey, ...]) -> Hop:
    handoffs = tuple(
        handoff if onward is None else attrs.evolve(handoff, hop=index[id(onward)])
        for handoff, onward in draft.handoffs
    )
    return Hop(
        draft.exchange,
        draft.type_name,
        draft.reached,
        tuple(draft.trials),
        tuple(draft.matched),
        draft.alternate_exchange,
        draft.used_alternate,
        handoffs,
        # Keys after those tried: an exchange type that routes by the routing key alone.
        untried=keys[len(draft.trials) :] if draft.trials else (),
        held_ms=draft.held_ms,
    )


def _binding_keys(draft: _Draft, target: Target) -> tuple[str, ...]:
    found = {
        checked.verdict.binding_key: None
        for trial in draft.trials
        for checked in trial.verdicts
        if checked.target == target and checked.verdict.matched
    }
    return tuple(found)


# -- telling it to a person -------------------------------------------------------------------


def render(trace: RouteTrace) -> str:
    """The trace as an indented plain-text story: hop by hop, binding by binding."""
    lines = [_describe_message(trace)]
    if trace.hops:
        _render_hop(trace.hops[0], trace.hops, 0, lines)
    if trace.queues:
        noun = "queue" if len(trace.queues) == 1 else "queues"
        lines.append(f"final: {noun} " + ", ".join(quote(q) for q in trace.queues))
    else:
        lines.append("unroutable: the message is dropped (returned to the publisher if mandatory)")
    return "\n".join(lines)


def _describe_message(trace: RouteTrace) -> str:
    text = "message: " + ", ".join(str(key) for key in trace.keys)
    if any(key.origin == "BCC" for key in trace.keys):
        text += " (the BCC header is removed before routing)"
    others = {k: v for k, v in (trace.headers or {}).items() if k not in ROUTING_HEADERS}
    return text + (f"; headers {others!r}" if others else "; no headers")


def _exchange_label(name: str) -> str:
    return "the default exchange" if name == "" else f"exchange {quote(name)}"


def _arrival(hop: Hop) -> str:
    reached = hop.reached
    if reached.how == "published":
        return "published to"
    if reached.how == "alternate":
        return f"alternate exchange of {quote(reached.via or '')}"
    keys = ", ".join(quote(k) for k in reached.binding_keys)
    return f"bound from {quote(reached.via or '')}" + (f" with key {keys}" if keys else "")


def _render_hop(hop: Hop, hops: tuple[Hop, ...], depth: int, lines: list[str]) -> None:
    pad = "  " * depth
    arrow = "→ " if depth else ""
    lines.append(f"{pad}{arrow}{_exchange_label(hop.exchange)} ({hop.type_name}): {_arrival(hop)}")
    inner = pad + "  "
    if hop.held_ms:
        lines.append(
            f"{inner}holds the message for {hop.held_ms} ms (its x-delay) and routes nothing "
            f"until then; afterwards its bindings route it, with x-delay -{hop.held_ms}:"
        )
    # Keys the router treats alike (fanout and headers ignore keys) are shown together.
    groups: list[list[KeyTrial]] = []
    for trial in hop.trials:
        alike = next((g for g in groups if _same_outcome(g[0], trial)), None)
        if alike is None:
            groups.append([trial])
        else:
            alike.append(trial)
    for trials in groups:
        if len(hop.trials) == 1:
            _render_verdicts(trials[0], inner, lines)
            continue
        heading = ", ".join(str(trial.key) for trial in trials)
        same = " (the same for each)" if len(trials) > 1 else ""
        lines.append(f"{inner}{heading}{same}:")
        _render_verdicts(trials[0], inner + "  ", lines)
    if hop.untried:
        skipped = ", ".join(str(key) for key in hop.untried)
        lines.append(f"{inner}not tried: {skipped} ({hop.type_name} uses only the routing key)")
    if not hop.matched and hop.alternate_exchange is None:
        lines.append(f"{inner}no binding matched, and there is no alternate exchange")
    for handoff in hop.handoffs:
        _render_handoff(handoff, hops, depth + 1, lines, held=hop.held_ms > 0)


def _same_outcome(one: KeyTrial, other: KeyTrial) -> bool:
    # Verdicts hold argument dicts, so they compare but do not hash.
    return one.verdicts == other.verdicts and one.routed == other.routed


def _render_verdicts(trial: KeyTrial, pad: str, lines: list[str]) -> None:
    explained = set()
    for checked in trial.verdicts:
        mark = "✓" if checked.verdict.matched else "✗"
        lines.append(f"{pad}{mark} {checked.target}: {checked.verdict.reason}")
        if checked.verdict.matched:
            explained.add(checked.target)
    for target in trial.routed:
        if target not in explained:
            lines.append(f"{pad}✓ {target}: routed (no binding explains it)")
    if not trial.verdicts and not trial.routed:
        lines.append(f"{pad}(no bindings)")


def _render_handoff(
    handoff: Handoff, hops: tuple[Hop, ...], depth: int, lines: list[str], *, held: bool
) -> None:
    pad = "  " * depth
    target, outcome = handoff.target, handoff.outcome
    if handoff.alternate:
        if handoff.after_hold:
            lead = f"{pad}when the hold ends, no binding matches: "
        else:
            lead = f"{pad}{'held, so nothing routed yet' if held else 'no binding matched'}: "
        if outcome == "visited":
            lines.append(f"{lead}falling back to alternate exchange {quote(target.name)}")
        elif outcome == "missing":
            lines.append(f"{lead}alternate exchange {quote(target.name)} does not exist")
        else:
            lines.append(
                f"{lead}alternate exchange {quote(target.name)} was already visited, "
                "so the message goes no further from here"
            )
    if outcome == "visited":
        assert handoff.hop is not None
        _render_hop(hops[handoff.hop], hops, depth, lines)
    elif handoff.alternate:
        return
    elif outcome == "already visited":
        lines.append(f"{pad}↺ {target} was already visited: not routed through again")
    elif outcome == "already queued":
        lines.append(f"{pad}= {target} already has a copy: each queue gets one")
