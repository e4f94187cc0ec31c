"""Opening a listener: a port that cannot be had is one error that names it.

Shared by the AMQP server, the management API and the Prometheus endpoint, so that
`amqp-lite serve` can say in one line which port is taken, rather than show a traceback.
"""

from __future__ import annotations

import trio


async def open_tcp_listeners(what: str, host: str, port: int) -> list[trio.SocketListener]:
    """trio's listeners on host:port; an OSError (a port in use, an address not ours) says
    `cannot serve {what} on host:port: reason`."""
    try:
        return await trio.open_tcp_listeners(port, host=host)
    except OSError as error:
        reason = error.strerror or str(error)
        raise OSError(error.errno, f"cannot serve {what} on {host}:{port}: {reason}") from None
