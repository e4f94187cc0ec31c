"""Why did a message go where it went?  A walk over a whole topology that records every
router's verdicts on the way, and ``render`` to tell the story to a person.

The walk is RabbitMQ's (rabbit_exchange:route in 3.10):
* The message's keys are its routing key, then the strings in its ``CC`` header, then those in
  ``BCC`` (arrays; other element types are skipped, and a non-array refuses the publish).
  Every exchange routes on all of them, except types that hash only the routing key
  (x-consistent-hash).  RabbitMQ drops the ``BCC`` header before routing, so no router sees it.
* Starting from the exchange published to, each exchange reached routes the message; its
  matches are its destinations.  Only if its own router matched nothing and it has an
  alternate exchange does the message go on to that alternate.
* Exchanges are visited at most once.  An exchange counts as seen when it is first reached,
  and a missing one is skipped.  Pending exchanges are visited newest first, as in RabbitMQ's
  work list; this changes the order of the hops, never which queues are reached.
* Queues are collected once each; RabbitMQ returns them sorted by name.
* A delayed-message exchange (``hold_ms`` > 0 for this message) holds it and routes nothing
  for now, so its alternate exchange, if any, is tried at once.  The trace goes on to show
  where its bindings send the message when the delay ends; the released message has its
  x-delay negated, so nothing after that holds it again.

Exchanges are described through callables, so this module needs nothing from the broker.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Hashable, Mapping
from typing import Any, Protocol

import attrs

from exchanges import erlang_text
from exchanges.explain import BindingVerdict, quote

ROUTING_HEADERS = ("CC", "BCC")


class Explains(Protocol):
    """What a hop needs from a router: a Router, or anything shaped like one."""

    def route(
        self, routing_key: str, headers: Mapping[str, Any] | None
    ) -> Collection[Hashable]: ...

    def explain(
        self, routing_key: str, headers: Mapping[str, Any] | None
    ) -> list[BindingVerdict]: ...


@attrs.frozen
class ExchangeView:
    name: str
    type_name: str
    router: Explains
    alternate_exchange: str | None = None
    hold_ms: int = 0  # a delayed-message exchange holds this message that long first


class UnknownExchange(LookupError):
    """The exchange published to does not exist (a publish would get 404 NOT_FOUND)."""


class InvalidRoutingHeader(ValueError):
    """A CC or BCC header that is not an array; RabbitMQ refuses the publish with a 406."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


@attrs.frozen
class RouteKey:
    key: str
    origin: str  # "routing key", "CC" or "BCC"

    def __str__(self) -> str:
        label = self.origin if self.origin == "routing key" else f"{self.origin} key"
        return f"{label} {quote(self.key)}"


@attrs.frozen
class Target:
    kind: str  # "queue" or "exchange"
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
    outcome: str  # "queued", "already queued", "visited", "already visited" or "missing"
    alternate: bool = False  # the hop's alternate exchange, tried because nothing matched


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
    held_ms: int = 0  # held before its bindings route it (a delayed-message exchange)


@attrs.frozen
class RouteTrace:
    exchange: str
    routing_key: str
    headers: Mapping[str, Any] | None
    keys: tuple[RouteKey, ...]
    hops: tuple[Hop, ...]  # in the order RabbitMQ visits them
    queues: tuple[str, ...]  # each once, sorted by name as RabbitMQ returns them

    @property
    def routed(self) -> bool:
        return bool(self.queues)


def route_keys(routing_key: str, headers: Mapping[str, Any] | None) -> tuple[RouteKey, ...]:
    """The routing key plus the sender-selected CC and BCC keys, each key once."""
    keys = {routing_key: RouteKey(routing_key, "routing key")}
    for header in ROUTING_HEADERS:
        if not headers or header not in headers:
            continue
        value = headers[header]
        if not isinstance(value, list | tuple):
            kind = erlang_text.type_name(value)
            raise InvalidRoutingHeader(
                f'invalid message: {{unacceptable_type_in_header,"{header}",{kind}}}'
            )
        for key in value:
            if isinstance(key, str):  # only longstr elements count; RabbitMQ skips the rest
                keys.setdefault(key, RouteKey(key, header))
    return tuple(keys.values())


def trace_route(
    start: str,
    routing_key: str,
    headers: Mapping[str, Any] | None,
    *,
    exchange: Callable[[str], ExchangeView | None],
    destination_name: Callable[[Hashable], tuple[str, str]],
) -> RouteTrace:
    """Route a message from exchange ``start`` as RabbitMQ would, recording why at each hop.

    ``exchange`` looks an exchange up by name (None if there is none); ``destination_name``
    names a destination held by a router as ("queue", name) or ("exchange", name).
    """
    keys = route_keys(routing_key, headers)
    routed_headers = headers  # what routers see: RabbitMQ strips BCC first
    if headers and "BCC" in headers:
        routed_headers = {k: v for k, v in headers.items() if k != "BCC"}
    first = exchange(start)
    if first is None:
        raise UnknownExchange(f"no exchange {quote(start)}")

    def name(destination: Hashable) -> Target:
        return Target(*destination_name(destination))

    pending = [(first, Reached("published"), False)]  # (exchange, how, released from a hold)
    seen = {start}
    queues: dict[str, None] = {}
    hops: list[Hop] = []
    while pending:
        view, reached, released = pending.pop()
        held_ms = 0 if released else view.hold_ms
        hop = _route_at(view, reached, keys, routed_headers, name, held_ms)
        via = view.alternate_exchange if hop.used_alternate else None
        onward = [(Target("exchange", via), True)] if via is not None else []
        onward += [(target, False) for target in hop.matched]
        handoffs: list[Handoff] = []
        for target, alternate in onward:
            if target.kind == "queue":
                outcome = "already queued" if target.name in queues else "queued"
                queues[target.name] = None
            elif target.name in seen:
                outcome = "already visited"
            else:
                seen.add(target.name)  # seen even if missing, as in RabbitMQ
                found = exchange(target.name)
                outcome = "missing" if found is None else "visited"
                if found is not None:
                    how = (
                        Reached("alternate", view.name)
                        if alternate
                        else Reached("bound", view.name, _binding_keys(hop, target))
                    )
                    pending.append((found, how, released or (held_ms > 0 and not alternate)))
            handoffs.append(Handoff(target, outcome, alternate))
        hops.append(attrs.evolve(hop, handoffs=tuple(handoffs)))
    return RouteTrace(
        start,
        routing_key,
        headers,
        keys,
        tuple(hops),
        tuple(sorted(queues, key=lambda q: q.encode("utf-8", "surrogatepass"))),
    )


def _route_at(
    view: ExchangeView,
    reached: Reached,
    keys: tuple[RouteKey, ...],
    headers: Mapping[str, Any] | None,
    name: Callable[[Hashable], Target],
    held_ms: int,
) -> Hop:
    router = view.router
    tried = keys[:1] if getattr(router, "only_first_routing_key", False) else keys
    trials: list[KeyTrial] = []
    matched: dict[Target, None] = {}
    for key in tried:
        routed = tuple(name(d) for d in router.route(key.key, headers))
        verdicts = tuple(Checked(name(v.destination), v) for v in router.explain(key.key, headers))
        trials.append(KeyTrial(key, verdicts, routed))
        matched.update(dict.fromkeys(routed))
    return Hop(
        view.name,
        view.type_name,
        reached,
        tuple(trials),
        tuple(matched),
        view.alternate_exchange,
        used_alternate=(not matched or held_ms > 0) and view.alternate_exchange is not None,
        handoffs=(),
        untried=keys[len(tried) :],
        held_ms=held_ms,
    )


def _binding_keys(hop: Hop, target: Target) -> tuple[str, ...]:
    found = {
        checked.verdict.binding_key: None
        for trial in hop.trials
        for checked in trial.verdicts
        if checked.target == target and checked.verdict.matched
    }
    return tuple(found)


# -- telling it to a person -------------------------------------------------------------------


def render(trace: RouteTrace) -> str:
    """The trace as an indented plain-text story: hop by hop, binding by binding."""
    lines = [_describe_message(trace)]
    by_name = {hop.exchange: hop for hop in trace.hops}
    if trace.hops:
        _render_hop(trace.hops[0], by_name, 0, lines)
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


def _render_hop(hop: Hop, by_name: dict[str, Hop], depth: int, lines: list[str]) -> None:
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
        _render_handoff(handoff, by_name, depth + 1, lines, held=hop.held_ms > 0)


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
    handoff: Handoff, by_name: dict[str, Hop], depth: int, lines: list[str], *, held: bool
) -> None:
    pad = "  " * depth
    target, outcome = handoff.target, handoff.outcome
    if handoff.alternate:
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
        _render_hop(by_name[target.name], by_name, depth, lines)
    elif handoff.alternate:
        return
    elif outcome == "already visited":
        lines.append(f"{pad}↺ {target} was already visited: not routed through again")
    elif outcome == "missing":
        lines.append(f"{pad}✗ {target} does not exist: skipped")
    elif outcome == "already queued":
        lines.append(f"{pad}= {target} already has a copy: each queue gets one")
