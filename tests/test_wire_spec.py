"""The spec data: what the codec is built from has everything the broker relies on."""

from __future__ import annotations

import keyword

from amqp_lite.wire import methods
from amqp_lite.wire.spec import (
    CLASSES,
    FRAME_BODY,
    FRAME_END,
    FRAME_HEADER,
    FRAME_HEARTBEAT,
    FRAME_METHOD,
    FRAME_MIN_SIZE,
    METHODS,
    METHODS_BY_NAME,
    PRIMITIVES,
    PROPERTIES,
    RAW,
    REPLY_CODES,
    SPEC,
)

# The names the rest of the broker codes against.
API_NAMES = str.split("""
ConnectionStart ConnectionStartOk ConnectionSecure ConnectionSecureOk ConnectionTune
ConnectionTuneOk ConnectionOpen ConnectionOpenOk ConnectionClose ConnectionCloseOk
ConnectionBlocked ConnectionUnblocked ConnectionUpdateSecret ConnectionUpdateSecretOk
ChannelOpen ChannelOpenOk ChannelFlow ChannelFlowOk ChannelClose ChannelCloseOk
ExchangeDeclare ExchangeDeclareOk ExchangeDelete ExchangeDeleteOk ExchangeBind ExchangeBindOk
ExchangeUnbind ExchangeUnbindOk QueueDeclare QueueDeclareOk QueueBind QueueBindOk QueuePurge
QueuePurgeOk QueueDelete QueueDeleteOk QueueUnbind QueueUnbindOk BasicQos BasicQosOk
BasicConsume BasicConsumeOk BasicCancel BasicCancelOk BasicPublish BasicReturn BasicDeliver
BasicGet BasicGetOk BasicGetEmpty BasicAck BasicReject BasicRecoverAsync BasicRecover
BasicRecoverOk BasicNack TxSelect TxSelectOk TxCommit TxCommitOk TxRollback TxRollbackOk
ConfirmSelect ConfirmSelectOk
""")


def test_frame_constants_and_defaults() -> None:
    assert (FRAME_METHOD, FRAME_HEADER, FRAME_BODY, FRAME_HEARTBEAT) == (1, 2, 3, 8)
    assert FRAME_END == 0xCE
    assert FRAME_MIN_SIZE == 4096
    primitives = "octet short long longlong bit shortstr longstr timestamp table"
    assert set(primitives.split()) == PRIMITIVES


def test_the_14_basic_properties_in_order() -> None:
    assert [(p.attr, p.type) for p in PROPERTIES] == [
        ("content_type", "shortstr"),
        ("content_encoding", "shortstr"),
        ("headers", "table"),
        ("delivery_mode", "octet"),
        ("priority", "octet"),
        ("correlation_id", "shortstr"),
        ("reply_to", "shortstr"),
        ("expiration", "shortstr"),
        ("message_id", "shortstr"),
        ("timestamp", "timestamp"),
        ("type", "shortstr"),
        ("user_id", "shortstr"),
        ("app_id", "shortstr"),
        ("cluster_id", "shortstr"),
    ]


def test_rabbitmq_extensions() -> None:
    ids = {m.full_name: (m.class_id, m.method_id) for m in METHODS}
    assert ids["basic.nack"] == (60, 120)
    assert ids["confirm.select"] == (85, 10)
    assert ids["confirm.select-ok"] == (85, 11)
    assert ids["exchange.bind"] == (40, 30)
    assert ids["exchange.bind-ok"] == (40, 31)
    assert ids["exchange.unbind"] == (40, 40)
    assert ids["exchange.unbind-ok"] == (40, 51)
    assert ids["connection.blocked"] == (10, 60)
    assert ids["connection.unblocked"] == (10, 61)
    assert ids["connection.update-secret"] == (10, 70)
    assert ids["connection.update-secret-ok"] == (10, 71)
    assert {c.name for c in CLASSES} == {"connection", "channel", "exchange", "queue", "basic",
                                          "confirm", "tx"}  # fmt: skip


def test_reply_codes_and_their_kinds() -> None:
    kinds = {code: r.kind for code, r in REPLY_CODES.items()}
    assert kinds[200] == "ok"
    for soft in (311, 312, 313, 403, 404, 405, 406):
        assert kinds[soft] == "soft", soft
    for hard in (320, 402, 501, 502, 503, 504, 505, 506, 530, 540, 541):
        assert kinds[hard] == "hard", hard
    assert REPLY_CODES[404].name == "NOT_FOUND"
    assert REPLY_CODES[501].hard and not REPLY_CODES[501].soft
    assert {r.value for r in SPEC.reply_codes} == set(REPLY_CODES)


def test_synchronous_methods_name_their_responses() -> None:
    for m in METHODS:
        assert m.synchronous == bool(m.responses), m.full_name
        for r in m.responses:
            assert r in METHODS_BY_NAME, r
    assert METHODS_BY_NAME["basic.get"].responses == ("basic.get-ok", "basic.get-empty")
    content = {m.full_name for m in METHODS if m.content}
    assert content == {"basic.publish", "basic.return", "basic.deliver", "basic.get-ok"}


def test_every_domain_maps_to_a_primitive() -> None:
    assert set(RAW["domains"].values()) <= PRIMITIVES
    assert all(f.type in PRIMITIVES for m in METHODS for f in m.fields)


def test_method_classes_have_the_api_names_and_attributes() -> None:
    assert sorted(API_NAMES) == sorted(m.class_attr for m in METHODS)
    for name in API_NAMES:
        cls = getattr(methods, name)
        assert methods.by_id[(cls.CLASS_ID, cls.METHOD_ID)] is cls
        assert methods.by_name[cls.NAME] is cls
        assert cls() == cls()  # every field has a default
    assert len(methods.by_id) == len(methods.by_name) == len(METHODS)
    qos = methods.BasicQos(prefetch_count=10, global_=True)
    assert qos.global_ and qos.prefetch_count == 10
    m = methods.BasicPublish(exchange="x", routing_key="k", mandatory=False, immediate=False)
    assert (m.CLASS_ID, m.METHOD_ID, m.NAME, m.SYNCHRONOUS, m.HAS_CONTENT) == (
        60, 40, "basic.publish", False, True
    )  # fmt: skip
    assert methods.QueueDeclare.SYNCHRONOUS and not methods.QueueDeclare.HAS_CONTENT
    assert methods.QueueDeclare().arguments == {}
    assert methods.QueueDeclare().arguments is not methods.QueueDeclare().arguments
    for m in METHODS:
        for f in m.fields:
            assert f.attr.isidentifier() and not keyword.iskeyword(f.attr)


def test_named_attributes_exist() -> None:
    expected = {
        "ConnectionClose": "reply_code reply_text class_id method_id",
        "ConnectionStart": "version_major version_minor server_properties mechanisms locales",
        "ConnectionStartOk": "client_properties mechanism response locale",
        "ConnectionTune": "channel_max frame_max heartbeat",
        "ConnectionOpen": "virtual_host capabilities insist",
        "ConnectionOpenOk": "known_hosts",
        "ConnectionUpdateSecret": "new_secret reason",
        "ConnectionBlocked": "reason",
        "ExchangeDeclare": "ticket exchange type passive durable auto_delete internal no_wait "
        "arguments",
        "ExchangeBind": "ticket destination source routing_key no_wait arguments",
        "QueueDeclare": "ticket queue passive durable exclusive auto_delete no_wait arguments",
        "QueueDeclareOk": "queue message_count consumer_count",
        "QueueDelete": "ticket queue if_unused if_empty no_wait",
        "BasicConsume": "ticket queue consumer_tag no_local no_ack exclusive no_wait arguments",
        "BasicQos": "prefetch_size prefetch_count global_",
        "BasicDeliver": "consumer_tag delivery_tag redelivered exchange routing_key",
        "BasicNack": "delivery_tag multiple requeue",
        "BasicReject": "delivery_tag requeue",
        "ChannelFlow": "active",
    }
    for name, attrs_ in expected.items():
        cls = getattr(methods, name)
        assert [f.attr for f in cls.SPEC.fields] == attrs_.split(), name
