"""Prometheus metrics of one app instance (own registry, so several apps can live in one process)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


@dataclass(slots=True)
class Metrics:
    """Request counters and latency histogram, plus the registry they live in."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    requests: Counter = field(init=False)
    latency: Histogram = field(init=False)
    logins: Counter = field(init=False)
    worker_restarts: Counter = field(init=False)
    ingest_inbox: Gauge = field(init=False)

    def __post_init__(self) -> None:
        self.requests = Counter(
            "smartpump_http_requests", "HTTP requests", ["method", "route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "smartpump_http_request_duration_seconds",
            "HTTP request latency",
            ["method", "route"],
            registry=self.registry,
        )
        self.logins = Counter("smartpump_logins", "Login attempts", ["outcome"], registry=self.registry)
        self.worker_restarts = Counter(
            "smartpump_worker_restarts",
            "Background workers (ingest loop, MQTT network thread) started again after they failed",
            ["worker"],
            registry=self.registry,
        )
        self.ingest_inbox = Gauge(
            "smartpump_ingest_inbox_events",
            "Events (each message one more) the ingest worker received and has not processed yet",
            registry=self.registry,
        )

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)
