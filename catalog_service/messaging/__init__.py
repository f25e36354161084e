"""Kafka side of the catalog: the consumer of ``saga.stock.commands``."""
