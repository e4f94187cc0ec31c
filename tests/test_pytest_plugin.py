"""The pytest plugin, as a user meets it: a sample test module run by `pytester` in a fresh pytest
(a subprocess, with its own rootdir and ini), with nothing but amqp-lite installed. The other
samples run in a fresh pytest session in this process (its own rootdir, ini and plugins, found
through the same entry point), which takes a fraction of the time a new interpreter does.

pika (sync), aio-pika (asyncio) and trio tests each get an empty vhost of their own from one
session broker; the vhost is gone after the test; the clock jumps over a 60-second TTL; and the
session broker can start from a definitions file.
"""

from __future__ import annotations

import json

import pika
import pytest

pytest_plugins = ["pytester"]

# What a user would write. Tests record what they saw in `SEEN`; the last test checks it.
SAMPLE = '''
import asyncio

import aio_pika
import aio_pika.exceptions
import pika
import pytest
import trio
from pika.exceptions import ChannelClosedByBroker, ConnectionClosedByBroker

SEEN = []  # (test, vhost name, url) per test
LEFT_OPEN = []  # a connection a test forgot to close


def passive_declare_fails_then_declare(url):
    """The vhost is empty: no 'shared' queue left by another test. Then leave one behind."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    with pytest.raises(ChannelClosedByBroker) as missing:
        connection.channel().queue_declare("shared", passive=True)
    assert missing.value.reply_code == 404
    connection.channel().queue_declare("shared")
    connection.close()


def test_pika(amqp_vhost):
    SEEN.append(("pika", amqp_vhost.name, amqp_vhost.url))
    passive_declare_fails_then_declare(amqp_vhost.url)
    LEFT_OPEN.append(pika.BlockingConnection(pika.URLParameters(amqp_vhost.url)))


def test_aio_pika(amqp_vhost, amqp_url):
    assert amqp_url == amqp_vhost.url
    SEEN.append(("aio-pika", amqp_vhost.name, amqp_url))

    async def scenario():
        connection = await aio_pika.connect(amqp_url)
        async with connection:
            channel = await connection.channel()
            with pytest.raises(aio_pika.exceptions.ChannelNotFoundEntity):
                await channel.declare_queue("shared", passive=True)
            channel = await connection.channel()
            await channel.declare_queue("shared")

    asyncio.run(asyncio.wait_for(scenario(), 10))


@pytest.mark.trio
async def test_trio(amqp_vhost):
    SEEN.append(("trio", amqp_vhost.name, amqp_vhost.url))
    # The broker serves from its own thread, so it answers a trio program directly...
    host, port = "127.0.0.1", amqp_vhost.broker.port
    stream = await trio.open_tcp_stream(host, port)
    await stream.send_all(b"AMQP\\x00\\x00\\x09\\x01")
    frame = await stream.receive_some(7)
    assert frame[:3] == b"\\x01\\x00\\x00"  # a method frame on channel 0: connection.start
    await stream.aclose()
    # ...and a blocking client run in a worker thread, as trio code uses one.
    await trio.to_thread.run_sync(passive_declare_fails_then_declare, amqp_vhost.url)
    amqp_vhost.advance(1)  # callable from inside a trio loop too


def test_advance_moves_the_broker_clock(amqp_vhost):
    broker = amqp_vhost.broker
    before = broker.call(broker.node.clock.now)
    amqp_vhost.advance(3600)
    assert broker.call(broker.node.clock.now) - before >= 3600


def test_each_test_had_its_own_vhost_on_one_broker(amqp_broker):
    assert [kind for kind, _, _ in SEEN] == ["pika", "aio-pika", "trio"]
    names = [name for _, name, _ in SEEN]
    assert len(set(names)) == 3
    assert all(url.startswith(amqp_broker.url) for _, _, url in SEEN)


def test_finished_tests_vhosts_are_gone_with_their_connections(amqp_broker):
    remaining = amqp_broker.call(lambda: set(amqp_broker.node.vhosts))
    assert not remaining & {name for _, name, _ in SEEN}
    with pytest.raises(ConnectionClosedByBroker) as closed:
        LEFT_OPEN[0].process_data_events(time_limit=5)
    assert closed.value.reply_code == 320
'''


def test_pika_aiopika_and_trio_tests_each_get_an_isolated_vhost(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_sample=SAMPLE)
    pytester.runpytest_subprocess().assert_outcomes(passed=6)


def test_clock_control_makes_a_60_second_ttl_expire_at_once(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_ttl="""
        import pika

        def test_a_60_second_ttl_expires_at_once(amqp_vhost):
            connection = pika.BlockingConnection(pika.URLParameters(amqp_vhost.url))
            channel = connection.channel()
            channel.confirm_delivery()  # the message is in the queue before the clock moves
            channel.queue_declare("short-lived", arguments={"x-message-ttl": 60000})
            channel.basic_publish("", "short-lived", b"soon gone")
            amqp_vhost.advance(61)
            assert channel.basic_get("short-lived", auto_ack=True) == (None, None, None)
            connection.close()
        """
    )
    pytester.runpytest_inprocess().assert_outcomes(passed=1)


def test_vhost_names_say_which_test_they_belong_to(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_names="""
        import pytest

        @pytest.mark.parametrize("case", ["a b/c"])
        def test_named(amqp_vhost, case):
            number, label = amqp_vhost.name.split("-", 2)[1:]
            assert number.isdigit()
            assert label == "test_named-a-b-c-"
            assert amqp_vhost.url.endswith("/" + amqp_vhost.name)
        """
    )
    pytester.runpytest_inprocess().assert_outcomes(passed=1)


# -- starting the session broker from a definitions file -----------------------------------------

DEFINITIONS = {
    "vhosts": [{"name": "/"}],
    "queues": [
        {"name": "preloaded", "vhost": "/", "durable": True, "auto_delete": False, "arguments": {}}
    ],
}

USES_DEFINITIONS = """
import pika

def test_preloaded_queue_is_there(amqp_broker):
    connection = pika.BlockingConnection(pika.URLParameters(amqp_broker.url))
    connection.channel().queue_declare("preloaded", passive=True)
    connection.close()
"""


def test_definitions_from_the_command_line(pytester: pytest.Pytester) -> None:
    pytester.makefile(".json", definitions=json.dumps(DEFINITIONS))
    pytester.makepyfile(test_defs=USES_DEFINITIONS)
    result = pytester.runpytest_inprocess("--amqp-definitions", "definitions.json")
    result.assert_outcomes(passed=1)


def test_definitions_from_the_ini_file(pytester: pytest.Pytester) -> None:
    pytester.mkdir("config").joinpath("definitions.json").write_text(json.dumps(DEFINITIONS))
    pytester.makeini("[pytest]\namqp_definitions = config/definitions.json\n")
    pytester.makepyfile(test_defs=USES_DEFINITIONS)
    pytester.runpytest_inprocess().assert_outcomes(passed=1)


def test_definitions_from_an_overridden_fixture(pytester: pytest.Pytester) -> None:
    pytester.makefile(".json", definitions=json.dumps(DEFINITIONS))
    pytester.makeconftest(
        """
        import pathlib
        import pytest

        @pytest.fixture(scope="session")
        def amqp_definitions():
            return pathlib.Path(__file__).parent / "definitions.json"
        """
    )
    pytester.makepyfile(test_defs=USES_DEFINITIONS)
    pytester.runpytest_inprocess().assert_outcomes(passed=1)


def test_a_bad_definitions_file_fails_the_tests_that_need_the_broker(
    pytester: pytest.Pytester,
) -> None:
    pytester.makefile(".json", definitions='{"queues": [{"name": 7}]}')
    pytester.makepyfile(test_defs=USES_DEFINITIONS)
    result = pytester.runpytest_inprocess("--amqp-definitions", "definitions.json")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*DefinitionsError: *definitions.json:1: *"])


def test_a_policy_set_through_the_vhost_fixture_governs_its_queues(amqp_vhost) -> None:
    amqp_vhost.set_policy("cap", "^capped$", {"max-length": 1}, apply_to="queues")
    connection = pika.BlockingConnection(pika.URLParameters(amqp_vhost.url))
    channel = connection.channel()
    declared = channel.queue_declare("capped")
    for body in (b"first", b"second"):
        channel.basic_publish("", declared.method.queue, body)
    assert channel.basic_get("capped", auto_ack=True)[2] == b"second"  # drop-head took "first"
    assert channel.basic_get("capped", auto_ack=True)[0] is None
    connection.close()


def test_the_vhost_fixture_lists_purges_and_deletes_its_queues(amqp_vhost) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(amqp_vhost.url))
    channel = connection.channel()
    channel.confirm_delivery()
    channel.queue_declare("jobs")
    channel.queue_declare("done")
    for body in (b"1", b"2"):
        channel.basic_publish("", "jobs", body)
    assert [(q.name, q.messages_ready) for q in amqp_vhost.queues()] == [("done", 0), ("jobs", 2)]
    assert amqp_vhost.purge_queue("jobs") == 2
    amqp_vhost.delete_queue("done")
    assert [(q.name, q.messages_ready) for q in amqp_vhost.queues()] == [("jobs", 0)]
    connection.close()
