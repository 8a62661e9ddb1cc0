"""``customs-hub registry query`` and ``registry sync``: have the running hub ask a partner's hub
about the AEOs that partner issued (docs/registry-sync.md). The command calls the hub's
PartnerRegistry service on its domestic port, as ``send`` calls Submit: the hub signs the
request, verifies the answer and receives the statuses as if pushed, in its own trail and
registry.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

import grpc
from google.protobuf.json_format import MessageToDict

from hub.config import load_config
from hub.core.errors import REASON_KEY, HubError, Status
from hub.core.snapshot import MAX_QUERY_IDS
from hub.pb.customs_hub.v1 import mr_pb2 as mpb
from hub.pb.customs_hub.v1 import mr_pb2_grpc as mgrpc

# A sync of a large list may take many partner calls: the CLI waits this long for the hub.
WAIT_SECONDS = 600.0


class RegistryCliError(HubError):
    """The running hub could not be asked, or refused what it was asked."""

    status = Status.FAILED_PRECONDITION
    default_reason = "registry-cli"


def add_actions(actions: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``query`` and ``sync`` under ``customs-hub registry``."""
    text = (
        "ask a partner's hub for the current status of AEOs it issued; what it answers is "
        "received as if pushed (trail, registry)"
    )
    query = actions.add_parser("query", help=text, description=text)
    query.add_argument("--config", type=Path, required=True, help="the running hub's hub.toml")
    query.add_argument("--partner", required=True, help="the partner that issued them, e.g. NZ")
    query.add_argument(
        "--aeo",
        nargs="+",
        required=True,
        metavar="ID",
        help=f"AEO ids (at most {MAX_QUERY_IDS})",
    )
    query.add_argument("--json", action="store_true", help="print the report as JSON")
    text = (
        "compare this hub's registry of a partner's AEOs with the partner's signed digest of "
        "its list, and fetch what is missing or older here"
    )
    sync = actions.add_parser("sync", help=text, description=text)
    sync.add_argument("--config", type=Path, required=True, help="the running hub's hub.toml")
    sync.add_argument("--partner", required=True, help="the partner, e.g. NZ")
    sync.add_argument("--json", action="store_true", help="print the report as JSON")


def run(args: argparse.Namespace) -> int:
    return asyncio.run(_run(args))


async def _run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    async with grpc.aio.insecure_channel(config.domestic_listen) as channel:
        stub = mgrpc.PartnerRegistryStub(channel)
        try:
            if args.registry_command == "query":
                query = await stub.QueryPartner(
                    mpb.QueryPartnerRequest(partner=args.partner, aeo_ids=args.aeo),
                    timeout=WAIT_SECONDS,
                )
                _print_query(query, args.json)
                return 0
            sync = await stub.SyncPartner(
                mpb.SyncPartnerRequest(partner=args.partner), timeout=WAIT_SECONDS
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.UNAVAILABLE and not _reason(exc):
                raise RegistryCliError(
                    f"the hub is not reachable on {config.domestic_listen}; is "
                    f"`customs-hub serve --config {args.config}` running?"
                ) from None
            raise RegistryCliError(
                f"registry {args.registry_command} --partner {args.partner}: "
                f"{_reason(exc) or exc.code().name.lower()}: {exc.details()}"
            ) from None
    _print_sync(sync, args.json)
    return 0


def _reason(exc: grpc.aio.AioRpcError) -> str:
    return str(dict(exc.trailing_metadata() or ()).get(REASON_KEY, ""))


def _as_dict(report: mpb.QueryPartnerReport | mpb.SyncPartnerReport) -> dict[str, object]:
    out = MessageToDict(
        report, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    for key in ("partner_root", "root_before", "root_after"):  # hex, as the trail shows roots
        if key in out:
            out[key] = getattr(report, key).hex()
    return _numbers(out)  # type: ignore[return-value]


# uint64 fields, which protobuf's JSON writes as strings: numbers here
_UINT64 = frozenset({"partner_count", "count_before", "count_after", "revision", "trail_index"})


def _numbers(value: object) -> object:
    if isinstance(value, dict):
        return {k: int(v) if k in _UINT64 else _numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_numbers(v) for v in value]
    return value


def _status_line(status: mpb.FetchedStatus) -> str:
    where = f" (trail {status.trail_index})" if status.outcome in ("accepted", "duplicate") else ""
    why = f": {status.reason}" if status.reason else ""
    return f"  {status.aeo_id} revision {status.revision}: {status.outcome}{why}{where}"


def _print_query(report: mpb.QueryPartnerReport, as_json: bool) -> None:
    if as_json:
        print(json.dumps(_as_dict(report), indent=2))
        return
    print(f"{report.partner} answered {len(report.statuses)} AEO status(es)")
    for status in report.statuses:
        print(_status_line(status))
    if report.not_found:
        print(f"  not issued by {report.partner}: {', '.join(report.not_found)}")


def _print_sync(report: mpb.SyncPartnerReport, as_json: bool) -> None:
    if as_json:
        print(json.dumps(_as_dict(report), indent=2))
        return
    print(
        f"{report.partner} lists {report.partner_count} AEO(s), root "
        f"{report.partner_root.hex()[:16]}; this hub held {report.count_before} "
        f"(root {report.root_before.hex()[:16]}), now {report.count_after} "
        f"(root {report.root_after.hex()[:16]})"
    )
    print(
        f"compared {report.ranges_compared} range(s) in {report.snapshot_calls} call(s), "
        f"{report.rounds} level(s) of bisection; fetched {len(report.fetched)}"
    )
    for status in report.fetched:
        print(_status_line(status))
    if report.only_here:
        print(f"  held here, not listed by {report.partner}: {', '.join(report.only_here)}")
    if report.newer_here:
        print(f"  newer here than {report.partner} lists: {', '.join(report.newer_here)}")
    state = "converged" if report.converged else "not converged"
    print(state + ("" if report.complete else " (stopped at a bound: run it again)"))
