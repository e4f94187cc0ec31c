"""Opening the durable store with our wire codec as its serialiser; where it lives by default."""

from __future__ import annotations

import os
from pathlib import Path

from amqp_lite.wire.fields import decode_table, encode_table
from amqp_lite.wire.properties import decode_properties, encode_properties, with_long_header
from vhosts.store import Codec, Store

CODEC = Codec(
    encode_table=encode_table,
    decode_table=decode_table,
    encode_properties=encode_properties,
    decode_properties=decode_properties,
    with_long_header=with_long_header,
)


def default_data_dir() -> Path:
    """$XDG_DATA_HOME/amqp-lite, else ~/.local/share/amqp-lite."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "amqp-lite"


def open_store(directory: str | os.PathLike[str]) -> Store:
    return Store(directory, CODEC)
