"""Virtual hosts share nothing; opening one needs it to exist and the right password; a channel
error closes only its channel, a connection error the whole connection.

Reply codes and texts are the ones RabbitMQ 3.10 sends for the same operations.
"""

from __future__ import annotations

from collections.abc import Iterator

import pika
import pytest
from pika.exceptions import (
    ChannelClosedByBroker,
    ConnectionClosedByBroker,
    ProbableAccessDeniedError,
    ProbableAuthenticationError,
)


@pytest.fixture
def other_vhost(broker) -> Iterator[pika.BlockingConnection]:
    conn = pika.BlockingConnection(pika.URLParameters(broker.vhost_url("other")))
    yield conn
    if conn.is_open:
        conn.close()


# -- isolation -----------------------------------------------------------------------------------


def test_same_queue_name_in_two_vhosts_is_two_queues(channel, other_vhost) -> None:
    elsewhere = other_vhost.channel()
    channel.queue_declare("shared")
    elsewhere.queue_declare("shared")
    channel.basic_publish("", "shared", b"for /")
    assert channel.basic_get("shared", auto_ack=True)[2] == b"for /"
    assert elsewhere.basic_get("shared", auto_ack=True)[0] is None  # asked after the publish landed


def test_queue_in_one_vhost_is_not_visible_in_another(channel, other_vhost) -> None:
    channel.queue_declare("only-here")
    with pytest.raises(ChannelClosedByBroker) as caught:
        other_vhost.channel().queue_declare("only-here", passive=True)
    assert caught.value.reply_code == 404
    assert caught.value.reply_text == "NOT_FOUND - no queue 'only-here' in vhost 'other'"


def test_exchange_in_one_vhost_is_not_visible_in_another(channel, other_vhost) -> None:
    channel.exchange_declare("shared-ex", "fanout")
    with pytest.raises(ChannelClosedByBroker) as caught:
        other_vhost.channel().exchange_declare("shared-ex", passive=True)
    assert caught.value.reply_code == 404
    assert caught.value.reply_text == "NOT_FOUND - no exchange 'shared-ex' in vhost 'other'"


def test_standard_exchange_routes_only_within_its_vhost(channel, other_vhost) -> None:
    elsewhere = other_vhost.channel()
    here_queue = channel.queue_declare("", exclusive=True).method.queue
    there_queue = elsewhere.queue_declare("", exclusive=True).method.queue
    channel.queue_bind(here_queue, "amq.fanout")
    elsewhere.queue_bind(there_queue, "amq.fanout")
    channel.basic_publish("amq.fanout", "", b"stays in /")
    assert channel.basic_get(here_queue, auto_ack=True)[2] == b"stays in /"
    assert elsewhere.basic_get(there_queue, auto_ack=True)[0] is None


# -- opening a connection ------------------------------------------------------------------------


def test_opening_an_unknown_vhost_is_530_not_allowed(broker) -> None:
    with pytest.raises(ProbableAccessDeniedError) as caught:
        pika.BlockingConnection(pika.URLParameters(broker.vhost_url("nowhere")))
    # pika keeps the broker's connection.close only as text.
    assert "(530) 'NOT_ALLOWED - vhost nowhere not found'" in str(caught.value)


def test_bad_password_is_403_access_refused(broker) -> None:
    with pytest.raises(ProbableAuthenticationError) as caught:
        pika.BlockingConnection(pika.URLParameters(broker.url.replace("guest:guest", "guest:x")))
    assert (
        "(403) 'ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN. "
        "For details see the broker logfile.'"
    ) in str(caught.value)


# -- channel errors and connection errors --------------------------------------------------------


def test_channel_error_closes_only_that_channel(connection) -> None:
    failing, bystander = connection.channel(), connection.channel()
    bystander.queue_declare("q")
    with pytest.raises(ChannelClosedByBroker) as caught:
        failing.queue_declare("absent", passive=True)
    assert caught.value.reply_code == 404
    assert failing.is_closed
    assert connection.is_open and bystander.is_open
    bystander.basic_publish("", "q", b"still working")
    assert bystander.basic_get("q", auto_ack=True)[2] == b"still working"
    assert connection.channel().queue_declare("q", passive=True).method.queue == "q"


def test_channel_error_leaves_consumers_on_other_channels_running(connection) -> None:
    consuming, failing = connection.channel(), connection.channel()
    consuming.queue_declare("q")
    deliveries = consuming.consume("q", auto_ack=True, inactivity_timeout=5)
    with pytest.raises(ChannelClosedByBroker):
        failing.exchange_declare("absent", passive=True)
    connection.channel().basic_publish("", "q", b"after the error")
    _method, _properties, body = next(deliveries)
    assert body == b"after the error"


def test_connection_error_closes_every_channel_and_frees_exclusive_queues(broker) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(broker.url))
    bystander, failing = connection.channel(), connection.channel()
    bystander.queue_declare("mine", exclusive=True)
    with pytest.raises(ConnectionClosedByBroker) as caught:
        failing.exchange_declare("ex", "no-such-type")
    assert caught.value.reply_code == 503
    assert connection.is_closed and bystander.is_closed
    observer = pika.BlockingConnection(pika.URLParameters(broker.url))
    try:
        with pytest.raises(ChannelClosedByBroker) as gone:
            observer.channel().queue_declare("mine", passive=True)
        assert gone.value.reply_code == 404
    finally:
        observer.close()
