"""Traces and metrics (OpenTelemetry), as hub.toml's [telemetry] says (docs/telemetry.md).

Each hub has its own providers, never the process-wide ones, so two hubs in one process (the
demo, the tests) keep apart, and nothing another library registers globally reaches them.
With the exporter "none" (the default) the tracer makes no spans and the callers skip even
the clock readings they would give them (``Telemetry.tracing``).

A message's spans are made after the fact from times the procedures took anyway: work is done
in batches (one group commit, one stream frame, one verification run for many messages), and
each message of a batch gets spans with the batch's start and end, under its own trace. The
sender's trace is carried in the signed envelope header (``traceparent``); a receiver starts a
trace of its own, linked to it (``link``), and never parented by it, so a partner can neither
join nor flood our traces.

What spans hold: message id, type, partner, attempt numbers, outcome and reason codes. Never
a document's content, names, trader ids or correlation ids (which domestic systems choose).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence

from opentelemetry import metrics, trace
from opentelemetry.context import Context
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import (
    Counter,
    Histogram,
    MeterProvider,
    ObservableCounter,
    ObservableGauge,
    ObservableUpDownCounter,
    UpDownCounter,
)
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricExporter,
    MetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind, TraceFlags
from prometheus_client import CollectorRegistry, start_http_server

from hub.config import TelemetryConfig
from hub.core.envelope import traceparent_fields
from hub.core.errors import ConfigError
from hub.core.reasons import REASONS

log = logging.getLogger("customs_hub.telemetry")

SCOPE = "customs_hub"
# The console and OTLP exporters' interval: metrics change slowly enough, and each export is a
# full copy of every series.
EXPORT_MILLIS = 60_000
# Series per metric the SDK keeps at most (the label values are closed sets already, hub/app/
# metrics.py; this holds even if one were not).
CARDINALITY = 2000
CARDINALITY_KINDS = (  # every kind of instrument: the limit is given per kind
    Counter,
    UpDownCounter,
    Histogram,
    ObservableCounter,
    ObservableUpDownCounter,
    ObservableGauge,
)
# Bounds on what one span may hold: a span is made from our own values only, but bounded all
# the same, so no value can grow an exporter's batch without limit.
LIMITS = SpanLimits(
    max_attributes=16,
    max_events=4,
    max_links=1,
    max_event_attributes=4,
    max_link_attributes=4,
    max_attribute_length=128,
)
# How long one export to a collector may take (the OTLP exporters retry within it), and how
# long a hub's stop waits for the last export: a collector that is down costs telemetry,
# never a slow stop.
EXPORT_SECONDS = 5.0
SHUTDOWN_SECONDS = 2.0

# attribute names (one place, so a test can hold every span to them)
MESSAGE_ID = "customs_hub.message_id"
BODY_TYPE = "customs_hub.type"
PARTNER = "customs_hub.partner"
REASON = "customs_hub.reason"
OUTCOME = "customs_hub.outcome"
ATTEMPT = "customs_hub.attempt"
FORMAT = "customs_hub.format"
COUNT = "customs_hub.count"
ATTRIBUTES = frozenset({MESSAGE_ID, BODY_TYPE, PARTNER, REASON, OUTCOME, ATTEMPT, FORMAT, COUNT})


def now_ns() -> int:
    return time.time_ns()


def traceparent(context: SpanContext) -> str:
    """``context`` as a W3C traceparent value (version 00); empty when it is not valid."""
    if not context.is_valid:
        return ""
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"


def log_ids(context: SpanContext | None) -> dict[str, str]:
    """``extra=`` for a log record about the span ``context`` (hub/logs.py writes the ids in
    JSON lines); empty when there is none."""
    if context is None or not context.is_valid:
        return {}
    return {"trace_id": f"{context.trace_id:032x}", "span_id": f"{context.span_id:016x}"}


def span_context(value: str) -> SpanContext | None:
    """The span context a traceparent value names, marked remote; None when it is empty or
    not a trace context (the envelope check refuses those: hub/core/envelope.py)."""
    fields = traceparent_fields(value)
    if fields is None:
        return None
    trace_id, span_id, flags = fields
    return SpanContext(
        trace_id, span_id, is_remote=True, trace_flags=TraceFlags(flags & TraceFlags.SAMPLED)
    )


def reason_code(reason: str) -> str:
    """A reason as a span may carry it: a registered reason code, else "other" (a partner's
    receipt may name anything)."""
    return reason if reason in REASONS else "other"


def short_type(body_type: str) -> str:
    """A body type's last part ("customs_hub.v1.GoodsDeclaration" -> "GoodsDeclaration")."""
    return body_type.rsplit(".", 1)[-1][:64]


def finish(span: trace.Span, end: int, error: str = "") -> None:
    """End ``span`` at ``end`` (ns since the epoch); with ``error`` (a reason code), failed."""
    if error:
        span.set_status(trace.StatusCode.ERROR, error[:128])
    span.end(end_time=end)


class Telemetry:
    """A hub's tracer and meter, and the providers behind them (flushed by ``shutdown``).

    ``span_exporter`` and ``metric_readers`` add to what the config names (tests give an
    in-memory exporter; spans given to it are exported as each ends)."""

    def __init__(
        self,
        config: TelemetryConfig,
        party: str,
        *,
        span_exporter: SpanExporter | None = None,
        metric_readers: Sequence[MetricReader] = (),
    ) -> None:
        self.config = config
        self.party = party
        resource = Resource.create({"service.name": "customs-hub", "service.instance.id": party})
        self.tracing = config.tracing or span_exporter is not None
        self._tracer_provider: TracerProvider | None = None
        self.tracer: trace.Tracer = trace.NoOpTracer()
        if self.tracing:
            provider = TracerProvider(
                shutdown_on_exit=False,  # shut down by the hub (``shutdown``), bounded
                resource=resource,
                sampler=ParentBased(TraceIdRatioBased(config.sample_ratio)),
                span_limits=LIMITS,
            )
            if span_exporter is not None:
                provider.add_span_processor(SimpleSpanProcessor(span_exporter))
            if config.exporter == "console":
                provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
            elif config.exporter == "otlp":
                from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
                    OTLPSpanExporter,
                )

                spans = OTLPSpanExporter(endpoint=config.otlp_endpoint, timeout=EXPORT_SECONDS)
                provider.add_span_processor(BatchSpanProcessor(spans))
            self._tracer_provider = provider
            self.tracer = provider.get_tracer(SCOPE)
        readers = list(metric_readers)
        self.metering = config.metering or bool(readers)
        self._meter_provider: MeterProvider | None = None
        self.meter: metrics.Meter = metrics.NoOpMeter(SCOPE)
        # the Prometheus endpoint's server, stopped by ``shutdown``
        self._scrape: PrometheusEndpoint | None = None
        if self.metering:
            readers += self._exporting_readers(config)
            if config.prometheus_port is not None:
                try:
                    self._scrape = PrometheusEndpoint(
                        config.prometheus_address, config.prometheus_port
                    )
                except ConfigError:  # the port is taken: nothing made so far may linger
                    self.shutdown()
                    raise
                readers.append(self._scrape.reader)
            self._meter_provider = MeterProvider(
                resource=resource, metric_readers=readers, shutdown_on_exit=False
            )
            self.meter = self._meter_provider.get_meter(SCOPE)

    @staticmethod
    def _exporting_readers(config: TelemetryConfig) -> list[MetricReader]:
        """The readers that push metrics where the exporter says, every ``EXPORT_MILLIS``."""
        if config.exporter == "console":
            exporter: MetricExporter = ConsoleMetricExporter()
        elif config.exporter == "otlp":
            from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
                OTLPMetricExporter,
            )

            exporter = OTLPMetricExporter(endpoint=config.otlp_endpoint, timeout=EXPORT_SECONDS)
        else:
            return []
        return [PeriodicExportingMetricReader(exporter, export_interval_millis=EXPORT_MILLIS)]

    def span(
        self,
        name: str,
        start: int,
        end: int,
        *,
        parent: SpanContext | None = None,
        link: SpanContext | None = None,
        attributes: Mapping[str, str | int] | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        error: str = "",
    ) -> SpanContext:
        """A span from ``start`` to ``end`` (ns since the epoch), ended at once: a child of
        ``parent`` (one of our own), or the root of a new trace, with a ``link`` to another's.
        Its context is returned, for children and for the header (invalid when tracing is
        off; not sampled, and so not recorded, as the sampler decides)."""
        if parent is not None and not parent.trace_flags.sampled:
            return parent  # under a trace not kept, a child is not kept either: nothing to make
        span = self.begin(name, start, parent=parent, link=link, attributes=attributes, kind=kind)
        finish(span, end, error)
        return span.get_span_context()

    def begin(
        self,
        name: str,
        start: int,
        *,
        parent: SpanContext | None = None,
        link: SpanContext | None = None,
        attributes: Mapping[str, str | int] | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
    ) -> trace.Span:
        """A span begun at ``start``, for one whose context must be known before it ends (an
        envelope's header or an inbound row names it); ``finish`` ends it."""
        if parent is not None and not parent.trace_flags.sampled:
            return NonRecordingSpan(parent)  # the trace is not kept: nothing to make
        # a root has an empty context, never whatever span happens to be current
        context = trace.set_span_in_context(NonRecordingSpan(parent)) if parent else Context()
        links = [Link(link)] if link is not None and link.is_valid else None
        return self.tracer.start_span(
            name, context, kind=kind, attributes=attributes, links=links, start_time=start
        )

    def shutdown(self, wait: float = SHUTDOWN_SECONDS) -> None:
        """Export what is buffered and stop (the hub is closing), waiting at most ``wait``
        seconds: a collector that does not answer must not hold up the hub's stop (the
        exporters would retry for their whole timeout). What was not sent by then is lost."""
        if self._scrape is not None:
            self._scrape.close()
            self._scrape = None
        providers = [p for p in (self._tracer_provider, self._meter_provider) if p is not None]
        self._tracer_provider = self._meter_provider = None
        if not providers:
            return

        def flush() -> None:
            for provider in providers:
                try:
                    provider.shutdown()
                except Exception:  # an exporter's failure must not fail the hub's close
                    log.warning("telemetry did not shut down cleanly", exc_info=True)

        # a daemon thread: one still waiting for a collector does not keep the process alive
        flushing = threading.Thread(target=flush, name="telemetry-shutdown", daemon=True)
        flushing.start()
        flushing.join(wait)
        if flushing.is_alive():
            log.warning(
                "telemetry: the exporters did not finish within %.0f s (is the collector "
                "down?); what they still held is dropped",
                wait,
            )


class PrometheusEndpoint:
    """A hub's metrics served for Prometheus to scrape (``/metrics`` on ``address:port``).

    The collector is registered on a registry of the hub's own, never prometheus_client's
    global one, so two hubs in one process each serve only their own metrics."""

    def __init__(self, address: str, port: int) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.reader = PrometheusMetricReader(
            registry=self.registry,
            cardinality_limits=dict.fromkeys(CARDINALITY_KINDS, CARDINALITY),
        )
        try:
            self.server, self.thread = start_http_server(port, address, registry=self.registry)
        except OSError as exc:
            self.registry.unregister(self.reader._collector)
            raise ConfigError(
                f"telemetry.prometheus_port {port}: cannot serve metrics on {address}:{port} "
                f"({exc.strerror or exc}); is another process (or hub) using the port?"
            ) from None

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def of_config(config: TelemetryConfig, party: str) -> Telemetry:
    """The telemetry a hub's [telemetry] describes: what a hub started without one of its own
    gets (tests/telemetryprobe.py puts in-memory exporters here, for every hub a test makes)."""
    return Telemetry(config, party)
