"""amqp-lite: an AMQP 0-9-1 broker on trio."""
