"""The whole broker's domain: its virtual hosts and its users, and their recovery from the store."""

from __future__ import annotations

from vhosts.clock import Clock
from vhosts.errors import NotAllowed
from vhosts.message import Message, QueueEntry
from vhosts.policies import Policy
from vhosts.queue import Queue
from vhosts.store import Store, stored_bcc
from vhosts.timers import Timers
from vhosts.users import DEFAULT_HASHING, Permission, User, Users
from vhosts.vhost import VirtualHost

DEFAULT_VHOST = "/"


class Node:
    def __init__(
        self,
        vhost_names: tuple[str, ...] = (DEFAULT_VHOST,),
        *,
        guest: bool = True,
        store: Store | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.clock = clock if clock is not None else Clock()
        self.timers = Timers()  # the server's timer task runs what is due on `clock`
        self.vhosts: dict[str, VirtualHost] = {}
        self.users = Users()
        self.store = store
        if store is not None:
            self._recover(store)
        if guest and self.users.get("guest") is None:
            self.add_user("guest", "guest", tags=["administrator"])
        for name in vhost_names:
            self.add_vhost(name)

    def add_vhost(self, name: str) -> VirtualHost:
        vhost = self.vhosts.get(name)
        if vhost is None:
            vhost = self.vhosts[name] = VirtualHost(
                name, self.store, clock=self.clock, timers=self.timers
            )
            if self.store is not None:
                self.store.save_vhost(name)
            guest = self.users.get("guest")
            if guest is not None and name not in guest.permissions:
                self.set_permission(guest, name, Permission())
        return vhost

    def delete_vhost(self, name: str) -> VirtualHost | None:
        """Remove a vhost and everything in it; the caller closes connections still open on it.

        Its queues go the way any deleted queue goes: consumers are cancelled (basic.cancel, as
        RabbitMQ sends before closing the connections), stored messages are released.
        """
        vhost = self.vhosts.pop(name, None)
        if vhost is not None:
            for queue in list(vhost.queues.values()):
                vhost.remove_queue(queue)
        for user in self.users:
            user.permissions.pop(name, None)
        if self.store is not None:
            self.store.delete_vhost(name)  # exchanges, bindings and anything left of the queues
        return vhost

    def vhost(self, name: str) -> VirtualHost:
        vhost = self.vhosts.get(name)
        if vhost is None:
            raise NotAllowed(f"vhost {name} not found")
        return vhost

    def add_user(
        self,
        name: str,
        password: str | None = None,
        *,
        password_hash: str | None = None,
        tags: list[str] | None = None,
        hashing_algorithm: str = DEFAULT_HASHING,
    ) -> User:
        user = self.users.add(
            name,
            password,
            password_hash=password_hash,
            tags=tags,
            hashing_algorithm=hashing_algorithm,
        )
        if self.store is not None:
            self.store.save_user(name, user.password_hash, user.hashing_algorithm, user.tags)
        return user

    def set_permission(self, user: User, vhost: str, permission: Permission) -> None:
        user.permissions[vhost] = permission
        if self.store is not None:
            p = permission
            self.store.save_permission(user.name, vhost, p.configure, p.write, p.read)

    def _recover(self, store: Store) -> None:
        """Rebuild vhosts, users, durable topology and persistent messages from the store."""
        for name, password_hash, algorithm, tags in store.users():
            self.users.add(
                name, password_hash=password_hash, tags=tags, hashing_algorithm=algorithm
            )
        for user_name, vhost_name, configure, write, read in store.permissions():
            user = self.users.get(user_name)
            if user is not None:
                user.permissions[vhost_name] = Permission(configure, write, read)
        # Topology goes through the ordinary declare and bind paths with the store detached,
        # so recovery applies the same rules and records nothing twice.
        for name in store.vhosts():
            self.vhosts[name] = VirtualHost(name, clock=self.clock, timers=self.timers)
        # Policies first, so every queue and exchange below is declared under them.
        for p in store.policies():
            policy = Policy(p.vhost, p.name, p.pattern, p.apply_to, p.priority, p.definition)
            self._recovered_vhost(p.vhost).set_policy(policy)
        for ex in store.exchanges():
            self._recovered_vhost(ex.vhost).declare_exchange(
                ex.name,
                ex.type,
                durable=True,
                auto_delete=ex.auto_delete,
                internal=ex.internal,
                arguments=ex.arguments,
            )
        for q in store.queues():
            # Built directly: a server-named queue ('amq.gen-...') could not be declared by name.
            vhost = self._recovered_vhost(q.vhost)
            vhost.queues[q.name] = vhost.new_queue(
                q.name, durable=True, auto_delete=q.auto_delete, arguments=q.arguments
            )
        for b in store.bindings():
            vhost = self._recovered_vhost(b.vhost)
            source = vhost.exchanges.get(b.source)
            table = vhost.queues if b.destination_kind == "queue" else vhost.exchanges
            destination = table.get(b.destination)
            if source is not None and destination is not None:
                vhost.bind(source, destination, b.routing_key, b.arguments)
        for vhost in self.vhosts.values():
            vhost.store = store
            for queue in vhost.queues.values():
                queue.store = store
        self._recover_messages(store)
        self._recover_held_messages(store)
        store.drop_orphans()

    def _recovered_vhost(self, name: str) -> VirtualHost:
        vhost = self.vhosts.get(name)
        if vhost is None:
            vhost = self.vhosts[name] = VirtualHost(name, clock=self.clock, timers=self.timers)
        return vhost

    def _recover_held_messages(self, store: Store) -> None:
        """Delayed messages go back on the clock; those already due are released at once."""
        for (
            held_id,
            vhost_name,
            exchange_name,
            release_at,
            message_id,
            original_exchange,
            key,
            raw,
            body,
            bcc,
        ) in store.held_messages():
            vhost = self.vhosts.get(vhost_name)
            exchange = vhost.exchanges.get(exchange_name) if vhost is not None else None
            if vhost is None or exchange is None:
                store.release(held_id)  # its exchange is gone; drop_orphans takes the content
                continue
            message = Message(original_exchange, key, None, body, raw)
            message.store_id, message.store_refs = message_id, 1
            message.bcc = stored_bcc(bcc)
            vhost._hold(exchange, message, release_at, held_id)

    def _recover_messages(self, store: Store) -> None:
        Message.decode_properties = store.codec.decode_properties
        messages: dict[int, Message] = {}  # one object per stored content, however many queues
        queue: Queue | None = None
        entries: list[QueueEntry] = []
        for row in store.queue_messages():  # ordered by vhost, queue, position
            vhost_name, queue_name, seq, redelivered, expires_at, message_id = row[:6]
            exchange, key, raw, body, bcc = row[6:]
            if queue is None or queue.name != queue_name or queue.vhost_name != vhost_name:
                if queue is not None:
                    queue.restore(entries)
                queue, entries = self.vhosts[vhost_name].queues.get(queue_name), []
                if queue is None:
                    continue
            message = messages.get(message_id)
            if message is None:
                message = messages[message_id] = Message(exchange, key, None, body, raw)
                message.store_id = message_id
                message.bcc = stored_bcc(bcc)
            message.store_refs += 1
            entry = QueueEntry(message, queue, seq, bool(redelivered), True, expires_at)
            if queue.settings.max_priority:
                entry.priority = min(message.properties.priority or 0, queue.settings.max_priority)
            entries.append(entry)
        if queue is not None:
            queue.restore(entries)
