"""/api/vhost-limits and /api/user-limits: RabbitMQ's limits on vhosts and on users."""

from __future__ import annotations

from typing import Any

from amqp_lite.management.app import Call, HttpError, Route, bad_request, not_found
from vhosts.errors import NotFound
from vhosts.limits import LimitsInvalid


def _value(call: Call) -> Any:
    body = call.body()
    if "value" not in body:
        raise bad_request("[{key_missing,value}]")
    return body["value"]


# -- vhosts ----------------------------------------------------------------------------------------


def vhost_limits(call: Call) -> list[dict[str, Any]]:
    visible = set(call.admin.node.vhosts) if call.is_monitor else set(call.visible_vhosts())
    return [
        {"vhost": vhost, "value": value}
        for vhost, value in call.admin.vhost_limits().items()
        if vhost in visible
    ]


def one_vhost_limits(call: Call) -> list[dict[str, Any]]:
    name = call.params["vhost"]
    if name not in call.admin.node.vhosts:
        raise not_found()
    if not call.is_monitor:
        call.vhost()
    return [{"vhost": v, "value": value} for v, value in call.admin.vhost_limits(name).items()]


def put_vhost_limit(call: Call) -> None:
    call.require_admin()
    vhost = call.params["vhost"]
    if vhost not in call.admin.node.vhosts:
        raise HttpError(404, "not_found", "vhost_not_found")
    value = _value(call)
    try:
        call.admin.set_vhost_limit(vhost, call.params["name"], value)
    except LimitsInvalid as error:
        raise bad_request(str(error)) from None


def delete_vhost_limit(call: Call) -> None:
    call.require_admin()
    vhost = call.params["vhost"]
    if vhost not in call.admin.node.vhosts:
        raise not_found()
    call.admin.clear_vhost_limits(vhost, call.params["name"])


# -- users -----------------------------------------------------------------------------------------


def user_limits(call: Call) -> list[dict[str, Any]]:
    return [{"user": u, "value": value} for u, value in call.admin.user_limits().items()]


def one_user_limits(call: Call) -> list[dict[str, Any]]:
    try:
        found = call.admin.user_limits(call.params["user"])
    except NotFound:
        raise not_found() from None
    return [{"user": u, "value": value} for u, value in found.items()]


def put_user_limit(call: Call) -> None:
    call.require_admin()
    user = call.params["user"]
    value = _value(call)
    try:
        call.admin.set_user_limits(user, {call.params["name"]: value})
    except NotFound:
        raise bad_request(["no_such_user", user]) from None
    except LimitsInvalid as error:
        raise bad_request(str(error)) from None


def delete_user_limit(call: Call) -> None:
    call.require_admin()
    try:
        call.admin.clear_user_limits(call.params["user"], call.params["name"])
    except NotFound:
        raise not_found() from None


ROUTES = [
    Route("/api/vhost-limits", {"GET": vhost_limits}),
    Route("/api/vhost-limits/{vhost}", {"GET": one_vhost_limits}),
    Route(
        "/api/vhost-limits/{vhost}/{name}", {"PUT": put_vhost_limit, "DELETE": delete_vhost_limit}
    ),
    Route("/api/user-limits", {"GET": user_limits}),
    Route("/api/user-limits/{user}", {"GET": one_user_limits}),
    Route("/api/user-limits/{user}/{name}", {"PUT": put_user_limit, "DELETE": delete_user_limit}),
]
