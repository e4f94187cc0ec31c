"""/api/policies: named patterns that give queues and exchanges their settings."""

from __future__ import annotations

from typing import Any

from amqp_lite.management.app import Call, Created, Route, bad_request, not_found
from amqp_lite.management.paging import listing
from vhosts.policies import Policy


def _policy(policy: Policy) -> dict[str, Any]:
    return {
        "vhost": policy.vhost,
        "name": policy.name,
        "pattern": policy.pattern,
        "apply-to": policy.apply_to,
        "definition": policy.definition,
        "priority": policy.priority,
    }


def policies(call: Call) -> Any:
    found = [p for v in call.visible_vhosts() for p in call.admin.policies(v)]
    return listing([_policy(p) for p in found], call.query)


def vhost_policies(call: Call) -> Any:
    return listing([_policy(p) for p in call.admin.policies(call.vhost())], call.query)


def policy(call: Call) -> Any:
    found = [p for p in call.admin.policies(call.vhost()) if p.name == call.params["name"]]
    if not found:
        raise not_found()
    return _policy(found[0])


def put_policy(call: Call) -> Created:
    vhost = call.vhost()
    call.require_policymaker()
    body = call.body()
    for key in ("pattern", "definition"):
        if key not in body:
            raise bad_request(f"[{{key_missing,{key}}}]")
    name = call.params["name"]
    existed = any(p.name == name for p in call.admin.policies(vhost))
    try:
        call.admin.set_policy(
            vhost,
            name,
            body["pattern"],
            body["definition"],
            priority=body.get("priority", 0),
            apply_to=body.get("apply-to", "all"),
        )
    except ValueError as error:
        raise bad_request(f"Validation failed\n\n{error}\n") from None
    return Created(not existed)


def delete_policy(call: Call) -> None:
    vhost = call.vhost()
    call.require_policymaker()
    if not call.admin.clear_policy(vhost, call.params["name"]):
        raise not_found()


def operator_policies(call: Call) -> list[Any]:
    return []  # operator policies are not supported: there are never any


ROUTES = [
    Route("/api/policies", {"GET": policies}),
    Route("/api/policies/{vhost}", {"GET": vhost_policies}),
    Route(
        "/api/policies/{vhost}/{name}", {"GET": policy, "PUT": put_policy, "DELETE": delete_policy}
    ),
    Route("/api/operator-policies", {"GET": operator_policies}),
    Route("/api/operator-policies/{vhost}", {"GET": operator_policies}),
]
