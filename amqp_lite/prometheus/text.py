"""Prometheus's text exposition format (version 0.0.4), written out by hand.

A family is its name, type, help text and samples; each sample is a label set and a number.
The whole format is a few escaping rules and one line per sample, so writing it ourselves is
shorter than adapting a client library's registry to a broker whose numbers are read, not
pushed, at scrape time.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import attrs

CONTENT_TYPE = "text/plain; version=0.0.4"

Labels = tuple[tuple[str, str], ...]


@attrs.frozen
class Family:
    name: str
    type: str  # counter, gauge or untyped
    help: str
    samples: tuple[tuple[Labels, float], ...] = ()


def render(families: Iterable[Family]) -> str:
    """The families as Prometheus reads them: TYPE and HELP first (in RabbitMQ's order), then
    one line per sample. A family with no samples still says what it is, as RabbitMQ's do."""
    lines = []
    for family in families:
        lines.append(f"# TYPE {family.name} {family.type}")
        lines.append(f"# HELP {family.name} {_escape_help(family.help)}")
        for labels, value in family.samples:
            lines.append(f"{family.name}{_labels(labels)} {_number(value)}")
    lines.append("")
    return "\n".join(lines)


def _labels(labels: Labels) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{name}="{_escape_value(value)}"' for name, value in labels) + "}"


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _escape_value(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(value)
