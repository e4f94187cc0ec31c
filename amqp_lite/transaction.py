"""A channel's transaction (tx.select): publishes and settlements held until tx.commit.

Holding is all this part does; on commit the channel routes the publishes and applies the
settlements in the order they arrived, and on rollback it puts the settled deliveries back.
"""

from __future__ import annotations

from amqp_lite.delivery import Delivery
from vhosts import Exchange, Message

# What a settlement does to its deliveries: "ack", "requeue" or "discard".
Settlement = tuple[str, list[Delivery]]


class Transaction:
    def __init__(self) -> None:
        self.active = False  # tx.select was seen: everything is held until tx.commit
        self.publishes: list[tuple[Exchange, Message, bool]] = []  # (exchange, message, mandatory)
        self.settlements: list[Settlement] = []

    def hold_publish(self, exchange: Exchange, message: Message, mandatory: bool) -> None:
        self.publishes.append((exchange, message, mandatory))

    def hold_settlement(self, outcome: str, settled: list[Delivery]) -> None:
        self.settlements.append((outcome, settled))

    def take(self) -> tuple[list[tuple[Exchange, Message, bool]], list[Settlement]]:
        """Everything held, for tx.commit; the next transaction starts empty."""
        publishes, self.publishes = self.publishes, []
        settlements, self.settlements = self.settlements, []
        return publishes, settlements

    def discard(self) -> list[Delivery]:
        """Forget what was held (tx.rollback, the channel closing); returns the deliveries
        whose settlement never happened."""
        _, settlements = self.take()
        return [delivery for _outcome, settled in settlements for delivery in settled]
