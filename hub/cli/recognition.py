"""``customs-hub recognition lookup`` and ``recognition controls``: the Recognition service's
answers for an officer at a terminal, read from the hub's store with the agreements of its
configuration (as ``messages`` reads the store; the hub may be running or not).

Human output is one line per partner: recognised under which agreement with which benefits, or
why not; ``--json`` prints the answer as the gRPC service gives it (protobuf JSON, one object).
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path

from google.protobuf import json_format

from hub.app.recognition import Lookups
from hub.config import load_config
from hub.core.agreements import BENEFITS
from hub.pb.customs_hub.v1 import recognition_pb2 as rpb
from hub.store.db import Store

CONFIG_HELP = "the hub's hub.toml"
AS_OF_HELP = "the day to answer for, yyyy-mm-dd (default: today, UTC)"


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    text = "is an operator recognised here, has a partner controlled a consignment"
    recognition = sub.add_parser("recognition", help=text, description=text).add_subparsers(
        dest="recognition_command", required=True
    )
    text = (
        "every partner's AEO status of an operator: recognised under which agreement with "
        "which benefits, or why not (reads the store)"
    )
    lookup = recognition.add_parser("lookup", help=text, description=text)
    lookup.add_argument("--config", type=Path, required=True, help=CONFIG_HELP)
    key = lookup.add_mutually_exclusive_group(required=True)
    key.add_argument("--aeo", metavar="ID", help="the operator's AEO id")
    key.add_argument("--tin", metavar="ID", help="the operator's TIN (e.g. EORI)")
    lookup.add_argument("--as-of", metavar="DATE", default="", help=AS_OF_HELP)
    lookup.add_argument("--json", action="store_true", help="the answer as protobuf JSON")

    text = (
        "partners' control results of a declaration, container or transport document, and "
        "whether they count here (reads the store)"
    )
    controls = recognition.add_parser("controls", help=text, description=text)
    controls.add_argument("--config", type=Path, required=True, help=CONFIG_HELP)
    key = controls.add_mutually_exclusive_group(required=True)
    key.add_argument("--mrn", help="the declaration's MRN")
    key.add_argument("--lrn", help="the declaration's LRN")
    key.add_argument("--container", help="a container id")
    key.add_argument("--transport-document", help="a transport document (B/L, air waybill) id")
    controls.add_argument("--as-of", metavar="DATE", default="", help=AS_OF_HELP)
    controls.add_argument("--json", action="store_true", help="the answer as protobuf JSON")


async def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    store = await Store.existing(
        config.store_url, upgrade_hint=f"customs-hub db upgrade --config {args.config}"
    )
    lookups = Lookups(
        store.registry,
        lambda: config.agreements,
        config.party,
        lambda: datetime.now(UTC).date(),
    )
    try:
        if args.recognition_command == "lookup":
            query = (
                rpb.OperatorQuery(aeo_id=args.aeo, as_of=args.as_of)
                if args.aeo is not None
                else rpb.OperatorQuery(tin=args.tin, as_of=args.as_of)
            )
            answer = await lookups.operator(query)
            print(_json(answer) if args.json else operator_text(answer))
        else:
            which = {
                "mrn": args.mrn,
                "lrn": args.lrn,
                "container": args.container,
                "transport_document": args.transport_document,
            }
            kind, value = next((k, v) for k, v in which.items() if v is not None)
            controls_query = rpb.ControlsQuery(as_of=args.as_of, **{kind: value})
            found = await lookups.controls(controls_query)
            print(_json(found) if args.json else controls_text(found, kind, value))
    finally:
        await store.close()
    return 0


def _json(message: rpb.OperatorAnswer | rpb.LookupControlsResponse) -> str:
    as_dict = json_format.MessageToDict(message, preserving_proto_field_name=True)
    return json.dumps(as_dict, sort_keys=True)


def _validity(status: rpb.OperatorStatus) -> str:
    if status.valid_from and status.valid_to:
        return f"{status.valid_from} to {status.valid_to}"
    if status.valid_from:
        return f"from {status.valid_from}"
    return f"until {status.valid_to}" if status.valid_to else "no dates"


def _verdict(recognised: bool, reason: str, reason_text: str, agreement: str) -> str:
    if recognised:
        return f"RECOGNISED under {agreement}"
    under = f" (agreement {agreement})" if agreement else ""
    return f"NOT RECOGNISED: {reason}{under}: {reason_text}"


def operator_text(answer: rpb.OperatorAnswer) -> str:
    key = answer.query.WhichOneof("key")
    value = getattr(answer.query, key) if key else ""
    what = "AEO id" if key == "aeo_id" else "TIN"
    if not answer.statuses:
        return (
            f"{what} {value}, as of {answer.as_of}: no partner has sent a status of this "
            "operator: not recognised"
        )
    recognised = sum(1 for s in answer.statuses if s.recognised)
    lines = [
        f"{what} {value}, as of {answer.as_of}: "
        + (
            f"recognised ({recognised} of {len(answer.statuses)} partners' statuses)"
            if recognised
            else "not recognised"
        )
    ]
    benefits: dict[str, str] = {}
    for s in answer.statuses:
        verdict = _verdict(s.recognised, s.reason, s.reason_text, s.agreement_id)
        if s.recognised:
            verdict += f" as {s.our_programme}: " + (
                ", ".join(b.code for b in s.benefits) or "no benefits listed"
            )
            benefits.update((b.code, b.sentence) for b in s.benefits)
        lines.append(
            f"  {s.party}: {s.aeo_id} {s.name} ({s.tin}), {s.programme} {s.status} "
            f"{_validity(s)}, revision {s.revision}: {verdict} "
            f"[message {s.message_id}, trail index {s.trail_index}]"
        )
    if answer.truncated:
        lines.append(f"  (more statuses matched; the first {len(answer.statuses)} are listed)")
    if benefits:
        lines.append("Benefits:")
        lines += [
            f"  {code}: {sentence or BENEFITS.get(code, '')}" for code, sentence in benefits.items()
        ]
    return "\n".join(lines)


def controls_text(found: rpb.LookupControlsResponse, kind: str, value: str) -> str:
    what = kind.replace("_", " ")
    if not found.controls:
        return f"{what} {value}: no partner has sent a control result naming it"
    lines = [f"{what} {value}, as of {found.as_of}: {len(found.controls)} control result(s)"]
    for c in found.controls:
        verdict = _verdict(c.recognised, c.reason, c.reason_text, c.agreement_id)
        lines.append(
            f"  {c.party}: control {c.control_id} ({c.control_type}, stage {c.stage}), "
            f"outcome {c.outcome}, at {c.controlled_at or '?'} by office {c.office_id or '?'}, "
            f"revision {c.revision}: {verdict} "
            f"[message {c.message_id}, trail index {c.trail_index}]"
        )
    if found.truncated:
        lines.append(f"  (more results matched; the first {len(found.controls)} are listed)")
    lines.append("  (the current results; only the agreements are judged as of that day)")
    return "\n".join(lines)
