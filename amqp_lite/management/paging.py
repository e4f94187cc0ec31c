"""What RabbitMQ's list endpoints do with their query parameters.

`name` (with `use_regex`) filters by name, `sort` (a dotted field, e.g. `message_stats.publish`)
and `sort_reverse` order, `columns` keeps only some fields, and `page` / `page_size` turn the
list into RabbitMQ's page object (items, item_count, page, page_count, page_size,
filtered_count, total_count).
"""

from __future__ import annotations

import re
from typing import Any

from amqp_lite.management.app import bad_request

MAX_PAGE_SIZE = 500
DEFAULT_PAGE_SIZE = 100


def listing(items: list[dict[str, Any]], query: dict[str, str]) -> Any:
    """Apply the list query parameters of RabbitMQ's management API to `items`."""
    total = len(items)
    name = query.get("name")
    if name:
        items = _filtered(items, name, _flag(query.get("use_regex")))
    sort = query.get("sort")
    if sort:
        items = sorted(items, key=lambda item: _sort_key(_field(item, sort)))
    if _flag(query.get("sort_reverse")):
        items = list(reversed(items))
    columns = query.get("columns")
    page = query.get("page")
    if page is None:
        return _columns(items, columns) if columns else items
    page_number = _number("page", page)
    page_size = _number("page_size", query.get("page_size", str(DEFAULT_PAGE_SIZE)))
    if page_size > MAX_PAGE_SIZE:
        raise bad_request(f"Invalid page size {page_size}, must be less than {MAX_PAGE_SIZE + 1}")
    page_count = max((len(items) + page_size - 1) // page_size, 1)
    if page_number > page_count:
        raise bad_request(
            f"Page out of range, page: {page_number} page size: {page_size}, len: {len(items)}"
        )
    chosen = items[(page_number - 1) * page_size : page_number * page_size]
    return {
        "filtered_count": len(items),
        "item_count": len(chosen),
        "items": _columns(chosen, columns) if columns else chosen,
        "page": page_number,
        "page_count": page_count,
        "page_size": page_size,
        "total_count": total,
    }


def _flag(value: str | None) -> bool:
    return value is not None and value.lower() == "true"


def _number(name: str, value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise bad_request(f"{name} must be a positive integer: {value}")
    return int(value)


def _filtered(items: list[dict[str, Any]], name: str, regex: bool) -> list[dict[str, Any]]:
    if regex:
        try:
            pattern = re.compile(name)
        except re.error as error:
            raise bad_request(f"invalid regular expression: {error}") from None
        return [i for i in items if pattern.search(str(i.get("name", "")))]
    return [i for i in items if name in str(i.get("name", ""))]


def _field(item: dict[str, Any], path: str) -> Any:
    value: Any = item
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _sort_key(value: Any) -> tuple[int, Any]:
    # Missing values first, then numbers, then text: comparable whatever the field holds.
    if value is None:
        return (0, 0)
    if isinstance(value, bool | int | float):
        return (1, value)
    return (2, str(value))


def _columns(items: list[dict[str, Any]], columns: str) -> list[dict[str, Any]]:
    paths = [c for c in columns.split(",") if c]
    result = []
    for item in items:
        kept: dict[str, Any] = {}
        for path in paths:
            value = _field(item, path)
            if value is None and not _has(item, path):
                continue
            target = kept
            *parents, last = path.split(".")
            for part in parents:
                target = target.setdefault(part, {})
            target[last] = value
        result.append(kept)
    return result


def _has(item: dict[str, Any], path: str) -> bool:
    value: Any = item
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return False
        value = value[part]
    return True
