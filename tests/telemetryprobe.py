"""What hubs put in their telemetry, checked: every hub made while a ``Probe`` is installed
records its spans and metrics in memory, and ``Probe.problems`` lists every span attribute,
span name, status text, link, event or metric label that is not one of the few things
telemetry may hold (docs/telemetry.md), and every place a planted marker string shows up.

tests/adversarial/conftest.py installs one around every attack test, so the whole adversarial
suite runs with tracing and metrics on, and a test fails if an attack got anything of its
payload, a name, a trader id, a correlation id or a secret into a span or a label.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricsData
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from adapters.formats import BUILTIN
from hub.app import telemetry
from hub.app.telemetry import Telemetry
from hub.config import TelemetryConfig
from hub.core.messages import BODY_TYPES
from hub.core.reasons import REASONS

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
# parties, and the fixed sources of refusals (hub/app/metrics.py)
PARTIES = frozenset(
    {"CN", "NZ", "SG", "domestic", "other", "reload", "folder", "outbox-retry", "crl-fetch"}
    | {"revocation", "recognition"}
)
TYPES = frozenset({t.rsplit(".", 1)[-1] for t in BODY_TYPES} | {"other"})
WORDS = re.compile(r"^[a-z][a-z0-9-]{0,40}$")  # outcomes, lanes, directions, uses


def allowed(key: str, value: object) -> bool:
    """Whether ``value`` may stand under attribute or label ``key``."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return True
    if not isinstance(value, str):
        return False
    name = key.rsplit(".", 1)[-1]
    if name == "message_id":
        return UUID.fullmatch(value) is not None
    if name in ("partner", "party", "source"):
        return value in PARTIES
    if name == "type":
        return value in TYPES
    if name == "reason":
        return value in REASONS or value == "other"
    if name == "format":
        return value in BUILTIN or value in ("other", "detected")
    return WORDS.fullmatch(value) is not None


class _KeptReader(InMemoryMetricReader):
    """An in-memory reader that keeps what it read last when its hub shuts it down, so the
    probe can look after the hub stopped."""

    def __init__(self) -> None:
        super().__init__()
        self.last: MetricsData | None = None

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self.last = self.get_metrics_data()
        super().shutdown(timeout_millis, **kwargs)

    def data(self) -> MetricsData | None:
        return self.last if self.last is not None else self.get_metrics_data()


class Probe:
    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.readers: list[_KeptReader] = []

    def telemetry(self, config: TelemetryConfig, party: str) -> Telemetry:
        """What a hub made while the probe is installed gets instead of its own."""
        reader = _KeptReader()
        self.readers.append(reader)
        return Telemetry(config, party, span_exporter=self.exporter, metric_readers=[reader])

    def spans(self) -> Sequence[ReadableSpan]:
        return self.exporter.get_finished_spans()

    def labels(self) -> Iterator[tuple[str, str, object]]:
        """(metric name, label, value) of every point every hub's meter holds."""
        for reader in self.readers:
            data = reader.data()
            for resource in data.resource_metrics if data else ():
                for scope in resource.scope_metrics:
                    for metric in scope.metrics:
                        for point in metric.data.data_points:
                            for key, value in (point.attributes or {}).items():
                                yield metric.name, key, value

    def problems(self, markers: Iterable[str] = ()) -> list[str]:
        found: list[str] = []
        marks = [m for m in markers if m]
        for span in self.spans():
            texts = [span.name, span.status.description or ""]
            for key, value in (span.attributes or {}).items():
                texts.append(f"{key}={value}")
                if key not in telemetry.ATTRIBUTES or not allowed(key, value):
                    found.append(f"span {span.name}: attribute {key}={value!r}")
            for event in span.events:
                texts.append(event.name)
                texts += [f"{k}={v}" for k, v in (event.attributes or {}).items()]
            for link in span.links:
                texts += [f"{k}={v}" for k, v in (link.attributes or {}).items()]
            if not re.fullmatch(r"[a-z][a-z -]{0,40}", span.name):
                found.append(f"span name {span.name!r}")
            found += [f"span {span.name}: marker in {t!r}" for t in texts for m in marks if m in t]
        for metric, key, value in self.labels():
            if not allowed(key, value):
                found.append(f"metric {metric}: label {key}={value!r}")
            found += [
                f"metric {metric}: marker in {key}={value!r}" for m in marks if m in str(value)
            ]
        return found


def install(monkeypatch: pytest.MonkeyPatch) -> Probe:
    """Every hub made from now on (until the monkeypatch is undone) reports to a new probe."""
    probe = Probe()
    monkeypatch.setattr(telemetry, "of_config", probe.telemetry)
    return probe
