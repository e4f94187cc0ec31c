# Generated from spec/amqp-0-9-1.toml by `python -m amqp_lite.wire.typegen`: do not edit.
"""Types of the classes amqp_lite.wire builds from the spec at run time, for type checkers only."""

from typing import Any

from amqp_lite.wire.method_base import Method

__all__ = [
    "BasicAck",
    "BasicCancel",
    "BasicCancelOk",
    "BasicConsume",
    "BasicConsumeOk",
    "BasicDeliver",
    "BasicGet",
    "BasicGetEmpty",
    "BasicGetOk",
    "BasicNack",
    "BasicPublish",
    "BasicQos",
    "BasicQosOk",
    "BasicRecover",
    "BasicRecoverAsync",
    "BasicRecoverOk",
    "BasicReject",
    "BasicReturn",
    "ChannelClose",
    "ChannelCloseOk",
    "ChannelFlow",
    "ChannelFlowOk",
    "ChannelOpen",
    "ChannelOpenOk",
    "ConfirmSelect",
    "ConfirmSelectOk",
    "ConnectionBlocked",
    "ConnectionClose",
    "ConnectionCloseOk",
    "ConnectionOpen",
    "ConnectionOpenOk",
    "ConnectionSecure",
    "ConnectionSecureOk",
    "ConnectionStart",
    "ConnectionStartOk",
    "ConnectionTune",
    "ConnectionTuneOk",
    "ConnectionUnblocked",
    "ConnectionUpdateSecret",
    "ConnectionUpdateSecretOk",
    "ExchangeBind",
    "ExchangeBindOk",
    "ExchangeDeclare",
    "ExchangeDeclareOk",
    "ExchangeDelete",
    "ExchangeDeleteOk",
    "ExchangeUnbind",
    "ExchangeUnbindOk",
    "QueueBind",
    "QueueBindOk",
    "QueueDeclare",
    "QueueDeclareOk",
    "QueueDelete",
    "QueueDeleteOk",
    "QueuePurge",
    "QueuePurgeOk",
    "QueueUnbind",
    "QueueUnbindOk",
    "TxCommit",
    "TxCommitOk",
    "TxRollback",
    "TxRollbackOk",
    "TxSelect",
    "TxSelectOk",
]

class Properties:
    """The basic content properties, in spec order; None means not set."""

    content_type: str | None
    content_encoding: str | None
    headers: dict[str, Any] | None
    delivery_mode: int | None
    priority: int | None
    correlation_id: str | None
    reply_to: str | None
    expiration: str | None
    message_id: str | None
    timestamp: int | None
    type: str | None
    user_id: str | None
    app_id: str | None
    cluster_id: str | None
    def __init__(
        self,
        content_type: str | None = None,
        content_encoding: str | None = None,
        headers: dict[str, Any] | None = None,
        delivery_mode: int | None = None,
        priority: int | None = None,
        correlation_id: str | None = None,
        reply_to: str | None = None,
        expiration: str | None = None,
        message_id: str | None = None,
        timestamp: int | None = None,
        type: str | None = None,
        user_id: str | None = None,
        app_id: str | None = None,
        cluster_id: str | None = None,
    ) -> None: ...

class ConnectionStart(Method):
    """connection.start (10, 10)"""

    version_major: int
    version_minor: int
    server_properties: dict[str, Any]
    mechanisms: bytes
    locales: bytes
    def __init__(
        self,
        version_major: int = ...,
        version_minor: int = ...,
        server_properties: dict[str, Any] = ...,
        mechanisms: bytes = ...,
        locales: bytes = ...,
    ) -> None: ...

class ConnectionStartOk(Method):
    """connection.start-ok (10, 11)"""

    client_properties: dict[str, Any]
    mechanism: str
    response: bytes
    locale: str
    def __init__(
        self,
        client_properties: dict[str, Any] = ...,
        mechanism: str = ...,
        response: bytes = ...,
        locale: str = ...,
    ) -> None: ...

class ConnectionSecure(Method):
    """connection.secure (10, 20)"""

    challenge: bytes
    def __init__(
        self,
        challenge: bytes = ...,
    ) -> None: ...

class ConnectionSecureOk(Method):
    """connection.secure-ok (10, 21)"""

    response: bytes
    def __init__(
        self,
        response: bytes = ...,
    ) -> None: ...

class ConnectionTune(Method):
    """connection.tune (10, 30)"""

    channel_max: int
    frame_max: int
    heartbeat: int
    def __init__(
        self,
        channel_max: int = ...,
        frame_max: int = ...,
        heartbeat: int = ...,
    ) -> None: ...

class ConnectionTuneOk(Method):
    """connection.tune-ok (10, 31)"""

    channel_max: int
    frame_max: int
    heartbeat: int
    def __init__(
        self,
        channel_max: int = ...,
        frame_max: int = ...,
        heartbeat: int = ...,
    ) -> None: ...

class ConnectionOpen(Method):
    """connection.open (10, 40)"""

    virtual_host: str
    capabilities: str
    insist: bool
    def __init__(
        self,
        virtual_host: str = ...,
        capabilities: str = ...,
        insist: bool = ...,
    ) -> None: ...

class ConnectionOpenOk(Method):
    """connection.open-ok (10, 41)"""

    known_hosts: str
    def __init__(
        self,
        known_hosts: str = ...,
    ) -> None: ...

class ConnectionClose(Method):
    """connection.close (10, 50)"""

    reply_code: int
    reply_text: str
    class_id: int
    method_id: int
    def __init__(
        self,
        reply_code: int = ...,
        reply_text: str = ...,
        class_id: int = ...,
        method_id: int = ...,
    ) -> None: ...

class ConnectionCloseOk(Method):
    """connection.close-ok (10, 51)"""

    def __init__(self) -> None: ...

class ConnectionBlocked(Method):
    """connection.blocked (10, 60)"""

    reason: str
    def __init__(
        self,
        reason: str = ...,
    ) -> None: ...

class ConnectionUnblocked(Method):
    """connection.unblocked (10, 61)"""

    def __init__(self) -> None: ...

class ConnectionUpdateSecret(Method):
    """connection.update-secret (10, 70)"""

    new_secret: bytes
    reason: str
    def __init__(
        self,
        new_secret: bytes = ...,
        reason: str = ...,
    ) -> None: ...

class ConnectionUpdateSecretOk(Method):
    """connection.update-secret-ok (10, 71)"""

    def __init__(self) -> None: ...

class ChannelOpen(Method):
    """channel.open (20, 10)"""

    out_of_band: str
    def __init__(
        self,
        out_of_band: str = ...,
    ) -> None: ...

class ChannelOpenOk(Method):
    """channel.open-ok (20, 11)"""

    channel_id: bytes
    def __init__(
        self,
        channel_id: bytes = ...,
    ) -> None: ...

class ChannelFlow(Method):
    """channel.flow (20, 20)"""

    active: bool
    def __init__(
        self,
        active: bool = ...,
    ) -> None: ...

class ChannelFlowOk(Method):
    """channel.flow-ok (20, 21)"""

    active: bool
    def __init__(
        self,
        active: bool = ...,
    ) -> None: ...

class ChannelClose(Method):
    """channel.close (20, 40)"""

    reply_code: int
    reply_text: str
    class_id: int
    method_id: int
    def __init__(
        self,
        reply_code: int = ...,
        reply_text: str = ...,
        class_id: int = ...,
        method_id: int = ...,
    ) -> None: ...

class ChannelCloseOk(Method):
    """channel.close-ok (20, 41)"""

    def __init__(self) -> None: ...

class ExchangeDeclare(Method):
    """exchange.declare (40, 10)"""

    ticket: int
    exchange: str
    type: str
    passive: bool
    durable: bool
    auto_delete: bool
    internal: bool
    no_wait: bool
    arguments: dict[str, Any]
    def __init__(
        self,
        ticket: int = ...,
        exchange: str = ...,
        type: str = ...,
        passive: bool = ...,
        durable: bool = ...,
        auto_delete: bool = ...,
        internal: bool = ...,
        no_wait: bool = ...,
        arguments: dict[str, Any] = ...,
    ) -> None: ...

class ExchangeDeclareOk(Method):
    """exchange.declare-ok (40, 11)"""

    def __init__(self) -> None: ...

class ExchangeDelete(Method):
    """exchange.delete (40, 20)"""

    ticket: int
    exchange: str
    if_unused: bool
    no_wait: bool
    def __init__(
        self,
        ticket: int = ...,
        exchange: str = ...,
        if_unused: bool = ...,
        no_wait: bool = ...,
    ) -> None: ...

class ExchangeDeleteOk(Method):
    """exchange.delete-ok (40, 21)"""

    def __init__(self) -> None: ...

class ExchangeBind(Method):
    """exchange.bind (40, 30)"""

    ticket: int
    destination: str
    source: str
    routing_key: str
    no_wait: bool
    arguments: dict[str, Any]
    def __init__(
        self,
        ticket: int = ...,
        destination: str = ...,
        source: str = ...,
        routing_key: str = ...,
        no_wait: bool = ...,
        arguments: dict[str, Any] = ...,
    ) -> None: ...

class ExchangeBindOk(Method):
    """exchange.bind-ok (40, 31)"""

    def __init__(self) -> None: ...

class ExchangeUnbind(Method):
    """exchange.unbind (40, 40)"""

    ticket: int
    destination: str
    source: str
    routing_key: str
    no_wait: bool
    arguments: dict[str, Any]
    def __init__(
        self,
        ticket: int = ...,
        destination: str = ...,
        source: str = ...,
        routing_key: str = ...,
        no_wait: bool = ...,
        arguments: dict[str, Any] = ...,
    ) -> None: ...

class ExchangeUnbindOk(Method):
    """exchange.unbind-ok (40, 51)"""

    def __init__(self) -> None: ...

class QueueDeclare(Method):
    """queue.declare (50, 10)"""

    ticket: int
    queue: str
    passive: bool
    durable: bool
    exclusive: bool
    auto_delete: bool
    no_wait: bool
    arguments: dict[str, Any]
    def __init__(
        self,
        ticket: int = ...,
        queue: str = ...,
        passive: bool = ...,
        durable: bool = ...,
        exclusive: bool = ...,
        auto_delete: bool = ...,
        no_wait: bool = ...,
        arguments: dict[str, Any] = ...,
    ) -> None: ...

class QueueDeclareOk(Method):
    """queue.declare-ok (50, 11)"""

    queue: str
    message_count: int
    consumer_count: int
    def __init__(
        self,
        queue: str = ...,
        message_count: int = ...,
        consumer_count: int = ...,
    ) -> None: ...

class QueueBind(Method):
    """queue.bind (50, 20)"""

    ticket: int
    queue: str
    exchange: str
    routing_key: str
    no_wait: bool
    arguments: dict[str, Any]
    def __init__(
        self,
        ticket: int = ...,
        queue: str = ...,
        exchange: str = ...,
        routing_key: str = ...,
        no_wait: bool = ...,
        arguments: dict[str, Any] = ...,
    ) -> None: ...

class QueueBindOk(Method):
    """queue.bind-ok (50, 21)"""

    def __init__(self) -> None: ...

class QueueUnbind(Method):
    """queue.unbind (50, 50)"""

    ticket: int
    queue: str
    exchange: str
    routing_key: str
    arguments: dict[str, Any]
    def __init__(
        self,
        ticket: int = ...,
        queue: str = ...,
        exchange: str = ...,
        routing_key: str = ...,
        arguments: dict[str, Any] = ...,
    ) -> None: ...

class QueueUnbindOk(Method):
    """queue.unbind-ok (50, 51)"""

    def __init__(self) -> None: ...

class QueuePurge(Method):
    """queue.purge (50, 30)"""

    ticket: int
    queue: str
    no_wait: bool
    def __init__(
        self,
        ticket: int = ...,
        queue: str = ...,
        no_wait: bool = ...,
    ) -> None: ...

class QueuePurgeOk(Method):
    """queue.purge-ok (50, 31)"""

    message_count: int
    def __init__(
        self,
        message_count: int = ...,
    ) -> None: ...

class QueueDelete(Method):
    """queue.delete (50, 40)"""

    ticket: int
    queue: str
    if_unused: bool
    if_empty: bool
    no_wait: bool
    def __init__(
        self,
        ticket: int = ...,
        queue: str = ...,
        if_unused: bool = ...,
        if_empty: bool = ...,
        no_wait: bool = ...,
    ) -> None: ...

class QueueDeleteOk(Method):
    """queue.delete-ok (50, 41)"""

    message_count: int
    def __init__(
        self,
        message_count: int = ...,
    ) -> None: ...

class BasicQos(Method):
    """basic.qos (60, 10)"""

    prefetch_size: int
    prefetch_count: int
    global_: bool
    def __init__(
        self,
        prefetch_size: int = ...,
        prefetch_count: int = ...,
        global_: bool = ...,
    ) -> None: ...

class BasicQosOk(Method):
    """basic.qos-ok (60, 11)"""

    def __init__(self) -> None: ...

class BasicConsume(Method):
    """basic.consume (60, 20)"""

    ticket: int
    queue: str
    consumer_tag: str
    no_local: bool
    no_ack: bool
    exclusive: bool
    no_wait: bool
    arguments: dict[str, Any]
    def __init__(
        self,
        ticket: int = ...,
        queue: str = ...,
        consumer_tag: str = ...,
        no_local: bool = ...,
        no_ack: bool = ...,
        exclusive: bool = ...,
        no_wait: bool = ...,
        arguments: dict[str, Any] = ...,
    ) -> None: ...

class BasicConsumeOk(Method):
    """basic.consume-ok (60, 21)"""

    consumer_tag: str
    def __init__(
        self,
        consumer_tag: str = ...,
    ) -> None: ...

class BasicCancel(Method):
    """basic.cancel (60, 30)"""

    consumer_tag: str
    no_wait: bool
    def __init__(
        self,
        consumer_tag: str = ...,
        no_wait: bool = ...,
    ) -> None: ...

class BasicCancelOk(Method):
    """basic.cancel-ok (60, 31)"""

    consumer_tag: str
    def __init__(
        self,
        consumer_tag: str = ...,
    ) -> None: ...

class BasicPublish(Method):
    """basic.publish (60, 40)"""

    ticket: int
    exchange: str
    routing_key: str
    mandatory: bool
    immediate: bool
    def __init__(
        self,
        ticket: int = ...,
        exchange: str = ...,
        routing_key: str = ...,
        mandatory: bool = ...,
        immediate: bool = ...,
    ) -> None: ...

class BasicReturn(Method):
    """basic.return (60, 50)"""

    reply_code: int
    reply_text: str
    exchange: str
    routing_key: str
    def __init__(
        self,
        reply_code: int = ...,
        reply_text: str = ...,
        exchange: str = ...,
        routing_key: str = ...,
    ) -> None: ...

class BasicDeliver(Method):
    """basic.deliver (60, 60)"""

    consumer_tag: str
    delivery_tag: int
    redelivered: bool
    exchange: str
    routing_key: str
    def __init__(
        self,
        consumer_tag: str = ...,
        delivery_tag: int = ...,
        redelivered: bool = ...,
        exchange: str = ...,
        routing_key: str = ...,
    ) -> None: ...

class BasicGet(Method):
    """basic.get (60, 70)"""

    ticket: int
    queue: str
    no_ack: bool
    def __init__(
        self,
        ticket: int = ...,
        queue: str = ...,
        no_ack: bool = ...,
    ) -> None: ...

class BasicGetOk(Method):
    """basic.get-ok (60, 71)"""

    delivery_tag: int
    redelivered: bool
    exchange: str
    routing_key: str
    message_count: int
    def __init__(
        self,
        delivery_tag: int = ...,
        redelivered: bool = ...,
        exchange: str = ...,
        routing_key: str = ...,
        message_count: int = ...,
    ) -> None: ...

class BasicGetEmpty(Method):
    """basic.get-empty (60, 72)"""

    cluster_id: str
    def __init__(
        self,
        cluster_id: str = ...,
    ) -> None: ...

class BasicAck(Method):
    """basic.ack (60, 80)"""

    delivery_tag: int
    multiple: bool
    def __init__(
        self,
        delivery_tag: int = ...,
        multiple: bool = ...,
    ) -> None: ...

class BasicReject(Method):
    """basic.reject (60, 90)"""

    delivery_tag: int
    requeue: bool
    def __init__(
        self,
        delivery_tag: int = ...,
        requeue: bool = ...,
    ) -> None: ...

class BasicRecoverAsync(Method):
    """basic.recover-async (60, 100)"""

    requeue: bool
    def __init__(
        self,
        requeue: bool = ...,
    ) -> None: ...

class BasicRecover(Method):
    """basic.recover (60, 110)"""

    requeue: bool
    def __init__(
        self,
        requeue: bool = ...,
    ) -> None: ...

class BasicRecoverOk(Method):
    """basic.recover-ok (60, 111)"""

    def __init__(self) -> None: ...

class BasicNack(Method):
    """basic.nack (60, 120)"""

    delivery_tag: int
    multiple: bool
    requeue: bool
    def __init__(
        self,
        delivery_tag: int = ...,
        multiple: bool = ...,
        requeue: bool = ...,
    ) -> None: ...

class ConfirmSelect(Method):
    """confirm.select (85, 10)"""

    no_wait: bool
    def __init__(
        self,
        no_wait: bool = ...,
    ) -> None: ...

class ConfirmSelectOk(Method):
    """confirm.select-ok (85, 11)"""

    def __init__(self) -> None: ...

class TxSelect(Method):
    """tx.select (90, 10)"""

    def __init__(self) -> None: ...

class TxSelectOk(Method):
    """tx.select-ok (90, 11)"""

    def __init__(self) -> None: ...

class TxCommit(Method):
    """tx.commit (90, 20)"""

    def __init__(self) -> None: ...

class TxCommitOk(Method):
    """tx.commit-ok (90, 21)"""

    def __init__(self) -> None: ...

class TxRollback(Method):
    """tx.rollback (90, 30)"""

    def __init__(self) -> None: ...

class TxRollbackOk(Method):
    """tx.rollback-ok (90, 31)"""

    def __init__(self) -> None: ...
