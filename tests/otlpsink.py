"""A fake OpenTelemetry collector: an OTLP/gRPC server on loopback that keeps (or counts) the
spans and metric points hubs export to it, for tests of ``[telemetry] exporter = "otlp"`` and
for bench/e2e.py's telemetry-on runs. It stands in for a real collector, which cannot run
here; it speaks the real protocol (opentelemetry-proto's services), without TLS.

As a script (``python tests/otlpsink.py --port N``) it counts until SIGTERM, then prints one
JSON line: ``{"spans": ..., "points": ...}``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal

import grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as mpb
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2_grpc as mgrpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as tpb
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc as tgrpc
from opentelemetry.proto.trace.v1 import trace_pb2


class OtlpSink(tgrpc.TraceServiceServicer, mgrpc.MetricsServiceServicer):
    """Listens on 127.0.0.1:``port``; ``keep`` keeps every span and metrics request (tests),
    otherwise they are only counted (the bench)."""

    def __init__(self, port: int, *, keep: bool = True) -> None:
        self.port, self.keep = port, keep
        self.spans: list[trace_pb2.Span] = []
        self.metrics: list[mpb.ExportMetricsServiceRequest] = []
        self.span_count = self.point_count = 0
        self.server = grpc.aio.server()
        tgrpc.add_TraceServiceServicer_to_server(self, self.server)
        mgrpc.add_MetricsServiceServicer_to_server(self, self.server)

    async def start(self) -> None:
        self.server.add_insecure_port(f"127.0.0.1:{self.port}")
        await self.server.start()

    async def stop(self) -> None:
        await self.server.stop(0)

    async def Export(  # type: ignore[override]
        self,
        request: tpb.ExportTraceServiceRequest | mpb.ExportMetricsServiceRequest,
        context: grpc.aio.ServicerContext,
    ) -> tpb.ExportTraceServiceResponse | mpb.ExportMetricsServiceResponse:
        # one method name serves both services: the request's type says which was called
        if isinstance(request, tpb.ExportTraceServiceRequest):
            for resource in request.resource_spans:
                for scope in resource.scope_spans:
                    self.span_count += len(scope.spans)
                    if self.keep:
                        self.spans.extend(scope.spans)
            return tpb.ExportTraceServiceResponse()
        for resource_metrics in request.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    kind = metric.WhichOneof("data")
                    self.point_count += len(getattr(metric, kind).data_points) if kind else 0
        if self.keep:
            self.metrics.append(request)
        return mpb.ExportMetricsServiceResponse()


async def _serve(port: int) -> None:
    sink = OtlpSink(port, keep=False)
    await sink.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    print("listening", flush=True)
    await stop.wait()
    await sink.stop()
    print(json.dumps({"spans": sink.span_count, "points": sink.point_count}), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    asyncio.run(_serve(parser.parse_args().port))
