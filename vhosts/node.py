"""The whole broker's domain: its virtual hosts and its users."""

from __future__ import annotations

from vhosts.errors import NotAllowed
from vhosts.users import Permission, Users
from vhosts.vhost import VirtualHost

DEFAULT_VHOST = "/"


class Node:
    def __init__(
        self, vhost_names: tuple[str, ...] = (DEFAULT_VHOST,), *, guest: bool = True
    ) -> None:
        self.vhosts: dict[str, VirtualHost] = {}
        self.users = Users()
        if guest:
            self.users.add("guest", "guest", tags=["administrator"])
        for name in vhost_names:
            self.add_vhost(name)

    def add_vhost(self, name: str) -> VirtualHost:
        vhost = self.vhosts.get(name)
        if vhost is None:
            vhost = self.vhosts[name] = VirtualHost(name)
            guest = self.users.get("guest")
            if guest is not None:
                guest.permissions.setdefault(name, Permission())
        return vhost

    def delete_vhost(self, name: str) -> VirtualHost | None:
        for user in self.users:
            user.permissions.pop(name, None)
        return self.vhosts.pop(name, None)

    def vhost(self, name: str) -> VirtualHost:
        vhost = self.vhosts.get(name)
        if vhost is None:
            raise NotAllowed(f"vhost {name} not found")
        return vhost
