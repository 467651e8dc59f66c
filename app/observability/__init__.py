"""Observability: Prometheus metrics of requests, queues, the SMS outbox and the risk model."""
