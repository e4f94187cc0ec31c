"""The broker's domain: vhosts, exchanges, queues, bindings, users. No I/O, no wire formats."""

from vhosts.errors import BrokerError
from vhosts.exchange import Exchange
from vhosts.message import Message
from vhosts.node import DEFAULT_VHOST, Node
from vhosts.queue import Consumer, Queue, QueueEntry
from vhosts.users import Permission, User, Users
from vhosts.vhost import VirtualHost

__all__ = [
    "DEFAULT_VHOST",
    "BrokerError",
    "Consumer",
    "Exchange",
    "Message",
    "Node",
    "Permission",
    "Queue",
    "QueueEntry",
    "User",
    "Users",
    "VirtualHost",
]
