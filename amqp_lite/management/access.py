"""/api/vhosts, /api/users and /api/permissions: who may do what where."""

from __future__ import annotations

from typing import Any

from amqp_lite.management.app import (
    NO_CONTENT,
    Call,
    Created,
    Route,
    bad_request,
    flag,
    not_found,
)
from amqp_lite.management.overview import NODE_NAME
from amqp_lite.management.paging import listing
from amqp_lite.management.stats import CHANNEL_STATS, message_stats, with_rates
from vhosts.inventory import PermissionInfo, UserInfo
from vhosts.users import HASHING_ALGORITHMS

# -- vhosts ---------------------------------------------------------------------------------------


def _vhost(call: Call, name: str) -> dict[str, Any]:
    stats = call.stats
    key = ("vhost", name)
    info = call.admin.node.vhosts[name]
    meta = call.admin.vhost_metadata(name)
    queues = info.queues.values()
    ready = sum(q.message_count for q in queues)
    unacked = sum(q.unacked_count for q in queues)
    received, sent = stats.vhost_bytes(name)
    totals = {
        "messages": ready + unacked,
        "messages_ready": ready,
        "messages_unacknowledged": unacked,
        "recv_oct": received,
        "send_oct": sent,
    }
    return {
        "name": name,
        "description": meta["description"],
        "tags": list(meta["tags"]),
        "metadata": _metadata(meta),
        "default_queue_type": meta["default_queue_type"] or "undefined",
        "tracing": call.admin.tracing(name),
        "cluster_state": {NODE_NAME: "running"},
        "message_stats": message_stats(stats, key, stats.vhost_counts(name), CHANNEL_STATS),
        **with_rates(stats, key, totals, tuple(totals)),
    }


def _metadata(meta: dict[str, Any]) -> dict[str, Any]:
    shown = {"description": meta["description"], "tags": list(meta["tags"])}
    if meta["default_queue_type"] is not None:
        shown["default_queue_type"] = meta["default_queue_type"]
    return shown


def vhosts(call: Call) -> Any:
    names = sorted(call.admin.node.vhosts) if call.is_monitor else call.visible_vhosts()
    return listing([_vhost(call, n) for n in names], call.query)


def vhost(call: Call) -> Any:
    name = call.params["vhost"]
    if name not in call.admin.node.vhosts:
        raise not_found()
    if not call.is_monitor:
        call.vhost()
    return _vhost(call, name)


def put_vhost(call: Call) -> Created:
    call.require_admin()
    body = call.body()
    name = call.params["vhost"]
    # As RabbitMQ: the firehose goes on or off with the vhost's PUT; a bad value changes nothing.
    tracing = flag(body, "tracing", False) if "tracing" in body else None
    created = call.admin.add_vhost(name)
    meta = call.admin.vhost_metadata(name)  # what the body leaves out stays as it was
    tags = body.get("tags", meta["tags"])
    if isinstance(tags, str):
        tags = [t.strip() for t in tags.split(",") if t.strip()]
    description = body.get("description", meta["description"])
    default_type = body.get("default_queue_type")
    if default_type is not None and not isinstance(default_type, str):
        raise bad_request("default_queue_type must be a string")
    try:
        call.admin.set_vhost_metadata(
            name,
            description=str(description),
            tags=[str(t) for t in tags],
            default_queue_type=default_type,
        )
    except ValueError as error:
        raise bad_request(str(error)) from None
    if tracing is not None:
        call.admin.set_tracing(name, tracing)
    if created:
        # As RabbitMQ's management: whoever made the vhost may use it.
        call.admin.set_permissions(call.user.name, name)
    return Created(created)


def delete_vhost(call: Call) -> None:
    call.require_admin()
    if not call.admin.delete_vhost(call.params["vhost"]):
        raise not_found()


def vhost_permissions(call: Call) -> Any:
    call.require_admin()
    vhost = call.vhost()
    return listing([_permission(p) for p in call.admin.permissions(vhost=vhost)], call.query)


# -- users ----------------------------------------------------------------------------------------


def _user(info: UserInfo) -> dict[str, Any]:
    return {
        "name": info.name,
        "password_hash": info.password_hash,
        "hashing_algorithm": info.hashing_algorithm,
        "tags": list(info.tags),
        "limits": {},
    }


def users(call: Call) -> Any:
    call.require_admin()
    return listing([_user(u) for u in call.admin.users()], call.query)


def users_without_permissions(call: Call) -> Any:
    call.require_admin()
    with_permissions = {p.user for p in call.admin.permissions()}
    return [_user(u) for u in call.admin.users() if u.name not in with_permissions]


def user(call: Call) -> Any:
    call.require_admin()
    found = [u for u in call.admin.users() if u.name == call.params["user"]]
    if not found:
        raise not_found()
    return _user(found[0])


def put_user(call: Call) -> Created:
    call.require_admin()
    body = call.body()
    name = call.params["user"]
    if "tags" not in body:
        raise bad_request("tags_not_present")
    tags = body["tags"]
    if isinstance(tags, str):
        tags = [t.strip() for t in tags.split(",") if t.strip()]
    elif not isinstance(tags, list):
        raise bad_request("tags must be a comma-separated string or a list")
    # As RabbitMQ: a password is hashed the node's way; the algorithm named is that of a hash.
    algorithm = body.get("hashing_algorithm")
    if algorithm is not None and algorithm not in HASHING_ALGORITHMS:
        raise bad_request(f"unknown hashing algorithm {algorithm}")
    exists = any(u.name == name for u in call.admin.users())
    password, password_hash = body.get("password"), body.get("password_hash")
    if password is not None and not isinstance(password, str):
        raise bad_request("password must be a string")
    if password_hash is not None and not isinstance(password_hash, str):
        raise bad_request("password_hash must be a string")
    if exists and password is None and password_hash is None:
        call.admin.set_user_tags(name, [str(t) for t in tags])  # keeps the password
        return NO_CONTENT
    call.admin.add_user(
        name,
        password,
        password_hash=password_hash,
        tags=[str(t) for t in tags],
        hashing_algorithm=algorithm if password_hash is not None else None,
    )
    return Created(not exists)


def delete_user(call: Call) -> None:
    call.require_admin()
    if not call.admin.delete_user(call.params["user"]):
        raise not_found()


def bulk_delete_users(call: Call) -> None:
    call.require_admin()
    names = call.body().get("users")
    if not isinstance(names, list):
        raise bad_request("users must be a list")
    for name in names:
        call.admin.delete_user(str(name))


def user_permissions(call: Call) -> Any:
    call.require_admin()
    name = call.params["user"]
    if not any(u.name == name for u in call.admin.users()):
        raise not_found()
    return [_permission(p) for p in call.admin.permissions(user=name)]


# -- permissions ----------------------------------------------------------------------------------


def _permission(info: PermissionInfo) -> dict[str, Any]:
    return {
        "user": info.user,
        "vhost": info.vhost,
        "configure": info.configure,
        "write": info.write,
        "read": info.read,
    }


def permissions(call: Call) -> Any:
    call.require_admin()
    return listing([_permission(p) for p in call.admin.permissions()], call.query)


def permission(call: Call) -> Any:
    call.require_admin()
    vhost, name = call.params["vhost"], call.params["user"]
    if vhost not in call.admin.node.vhosts:
        raise not_found()
    found = [p for p in call.admin.permissions(vhost=vhost) if p.user == name]
    if not found:
        raise not_found()
    return _permission(found[0])


def put_permission(call: Call) -> Created:
    call.require_admin()
    vhost, name = call.params["vhost"], call.params["user"]
    if vhost not in call.admin.node.vhosts:
        raise bad_request("vhost_not_found")
    if not any(u.name == name for u in call.admin.users()):
        raise bad_request("user_not_found")
    body = call.body()
    patterns = []
    for key in ("configure", "write", "read"):
        value = body.get(key)
        if not isinstance(value, str):
            raise bad_request(f"[{{key_missing,{key}}}]")
        patterns.append(value)
    existed = any(p.user == name for p in call.admin.permissions(vhost=vhost))
    call.admin.set_permissions(name, vhost, *patterns)
    return Created(not existed)


def delete_permission(call: Call) -> None:
    call.require_admin()
    vhost, name = call.params["vhost"], call.params["user"]
    if vhost not in call.admin.node.vhosts or not any(u.name == name for u in call.admin.users()):
        raise not_found()
    if not call.admin.clear_permissions(name, vhost):
        raise not_found()


ROUTES = [
    Route("/api/vhosts", {"GET": vhosts}),
    Route("/api/vhosts/{vhost}", {"GET": vhost, "PUT": put_vhost, "DELETE": delete_vhost}),
    Route("/api/vhosts/{vhost}/permissions", {"GET": vhost_permissions}),
    Route("/api/users", {"GET": users}),
    Route("/api/users/without-permissions", {"GET": users_without_permissions}),
    Route("/api/users/bulk-delete", {"POST": bulk_delete_users}),
    Route("/api/users/{user}", {"GET": user, "PUT": put_user, "DELETE": delete_user}),
    Route("/api/users/{user}/permissions", {"GET": user_permissions}),
    Route("/api/permissions", {"GET": permissions}),
    Route(
        "/api/permissions/{vhost}/{user}",
        {"GET": permission, "PUT": put_permission, "DELETE": delete_permission},
    ),
]
