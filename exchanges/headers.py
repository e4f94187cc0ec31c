"""Headers exchange: routing on message headers against binding arguments, ignoring the key.

Rules as observed on RabbitMQ 3.10:
* ``x-match`` is "all" (default), "any", "all-with-x" or "any-with-x"; anything else, or a
  non-string, is refused with RabbitMQ's own 406 text.
* Arguments starting with "x-" (case-sensitive) are not conditions unless the mode ends in
  "-with-x"; "x-match" itself never is.
* A void (None) binding value only asks for the header to be present, whatever its value.
* "all" with no conditions matches every message, "any" with none matches no message.
* Values compare as ``values.loose_form`` explains (1 == 1.0, "1" != 1, True != 1).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any, ClassVar

import attrs

from exchanges import erlang_text
from exchanges.base import BindingId, InvalidBinding, Router
from exchanges.explain import BindingVerdict, quote
from exchanges.values import Form, kind_name, loose_form, octets

MODES = ("all", "any", "all-with-x", "any-with-x")


@attrs.frozen
class Condition:
    key: str
    value: Any
    wanted: Form | None  # None: a void binding value, satisfied by presence alone


@attrs.frozen
class Rule:
    """A binding's arguments compiled for matching."""

    mode: str
    conditions: tuple[Condition, ...]
    ignored: tuple[str, ...]  # "x-" arguments that do not take part in this mode
    require_all: bool = attrs.field(init=False)

    @require_all.default
    def _require_all(self) -> bool:
        return self.mode.startswith("all")


def compile_rule(arguments: Mapping[str, Any]) -> Rule:
    mode = arguments.get("x-match", "all")
    if not isinstance(mode, str):
        raise InvalidBinding(
            f"Invalid x-match field type {erlang_text.type_name(mode)} "
            f"(value {erlang_text.term(mode)}); expected longstr"
        )
    if mode not in MODES:
        raise InvalidBinding(
            f"Invalid x-match field value {erlang_text.binary(octets(mode))}; "
            "expected all, any, all-with-x, or any-with-x"
        )
    with_x = mode.endswith("-with-x")
    conditions: list[Condition] = []
    ignored: list[str] = []
    for key, value in arguments.items():
        if key == "x-match":
            continue
        if key.startswith("x-") and not with_x:
            ignored.append(key)
            continue
        conditions.append(Condition(key, value, None if value is None else loose_form(value)))
    return Rule(mode, tuple(conditions), tuple(ignored))


def _header_form(headers: Mapping[str, Any], key: str, memo: dict[str, Form]) -> Form:
    form = memo.get(key)
    if form is None:
        try:
            form = loose_form(headers[key])
        except TypeError:  # a value no AMQP table holds can equal nothing
            form = ("opaque", id(headers[key]))
        memo[key] = form
    return form


def _holds(condition: Condition, headers: Mapping[str, Any], memo: dict[str, Form]) -> bool:
    if condition.key not in headers:
        return False
    wanted = condition.wanted
    return wanted is None or _header_form(headers, condition.key, memo) == wanted


def rule_matches(rule: Rule, headers: Mapping[str, Any], memo: dict[str, Form]) -> bool:
    # Runs for every binding on every publish; plain loops measured ~2.5x faster than
    # all()/any() over a generator here.
    if rule.require_all:
        for condition in rule.conditions:  # noqa: SIM110
            if not _holds(condition, headers, memo):
                return False
        return True
    for condition in rule.conditions:  # noqa: SIM110
        if _holds(condition, headers, memo):
            return True
    return False


class HeadersRouter(Router):
    type_name: ClassVar[str] = "headers"

    def __init__(self) -> None:
        super().__init__()
        self._rules: dict[BindingId, Rule] = {}

    @classmethod
    def validate_binding(cls, binding_key: str, arguments: Mapping[str, Any]) -> None:
        compile_rule(arguments)

    def route(
        self, routing_key: str, headers: Mapping[str, Any] | None = None
    ) -> tuple[Hashable, ...]:
        # Every binding must be tested (as in RabbitMQ); header forms are computed once.
        present = headers or {}
        memo: dict[str, Form] = {}
        found: dict[Hashable, None] = {}
        for (destination, _, _), rule in self._rules.items():
            if destination not in found and rule_matches(rule, present, memo):
                found[destination] = None
        return tuple(found)

    def _index_add(self, binding_id: BindingId, arguments: dict[str, Any]) -> None:
        self._rules[binding_id] = compile_rule(arguments)

    def _index_remove(self, binding_id: BindingId, arguments: dict[str, Any]) -> None:
        del self._rules[binding_id]

    def _verdict(
        self,
        destination: Hashable,
        binding_key: str,
        arguments: dict[str, Any],
        routing_key: str,
        headers: Mapping[str, Any] | None,
    ) -> BindingVerdict:
        rule = compile_rule(arguments)
        matched, reason = explain_rule(rule, headers or {})
        return BindingVerdict(destination, binding_key, arguments, matched, reason)


def _describe(condition: Condition, headers: Mapping[str, Any], held: bool) -> str:
    key = quote(condition.key)
    if condition.key not in headers:
        return f"{key} is missing"
    if condition.wanted is None:
        return f"{key} is present (a void binding value accepts any value)"
    actual = headers[condition.key]
    if held:
        return f"{key} = {actual!r}"
    wanted = condition.value
    if kind_name(actual) != kind_name(wanted):
        return (
            f"{key} is {actual!r} ({kind_name(actual)}), "
            f"binding wants {wanted!r} ({kind_name(wanted)})"
        )
    return f"{key} is {actual!r}, binding wants {wanted!r}"


def explain_rule(rule: Rule, headers: Mapping[str, Any]) -> tuple[bool, str]:
    heading = f"x-match {rule.mode}"
    memo: dict[str, Form] = {}
    outcomes = [(c, _holds(c, headers, memo)) for c in rule.conditions]
    matched = rule_matches(rule, headers, memo)
    if not outcomes:
        reason = (
            f"{heading} with no header conditions matches every message"
            if rule.require_all
            else f"{heading} with no header conditions matches no message"
        )
    else:
        # Show what decided the outcome: the failures of a failed "all", the successes of
        # a matched "any", every condition otherwise.
        if matched == rule.require_all:
            lead = "every condition held" if matched else "no condition held"
            details = "; ".join(_describe(c, headers, held) for c, held in outcomes)
            reason = f"{heading}: {lead} ({details})"
        else:
            decisive = [_describe(c, headers, held) for c, held in outcomes if held == matched]
            reason = f"{heading}: " + "; ".join(decisive)
    if rule.ignored:
        names = ", ".join(quote(k) for k in rule.ignored)
        reason += f" ({names} ignored: x- arguments count only with all-with-x or any-with-x)"
    return matched, reason
