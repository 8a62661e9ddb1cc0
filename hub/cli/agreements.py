"""``customs-hub agreements``: the agreements a hub.toml configures, as the hub reads them.

For each: its partners, status, whether it is in effect today (UTC), its dates, which of the
partner's AEO programmes it recognises as which of ours, the benefits with their sentences,
what each message type may do (send, receive, the fields kept) and its digest, the policy
version the trail's ``queued`` leaves name. Reads the file only: no store, no hub.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from hub.config import load_config
from hub.core.agreements import BENEFITS, Agreement, Agreements


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    agreements = sub.add_parser(
        "agreements",
        help="list the mutual recognition agreements and their sharing policy (reads the "
        "config only)",
    )
    agreements.add_argument(
        "--config", type=Path, required=True, help="the hub's configuration file, hub.toml"
    )
    agreements.add_argument("--json", action="store_true", help="one JSON object")


def describe(agreement: Agreement, today: date) -> dict[str, Any]:
    return {
        "id": agreement.id,
        "partners": list(agreement.partners),
        "status": agreement.status,
        "in_effect": agreement.in_effect(today),
        "effective_from": agreement.effective_from.isoformat(),
        "effective_until": (
            agreement.effective_until.isoformat() if agreement.effective_until else ""
        ),
        "recognises": dict(agreement.recognises),
        "benefits": [{"code": c, "sentence": BENEFITS[c]} for c in agreement.benefits],
        "shares": [
            {
                "type": share.body_type,
                "send": share.send,
                "receive": share.receive,
                "fields": list(share.fields),  # empty: the whole message
            }
            for share in agreement.shares.values()
        ],
        "digest": agreement.digest,
    }


def report(agreements: Agreements, today: date) -> dict[str, Any]:
    return {
        "today": today.isoformat(),
        "configured": agreements.configured,
        "digest": agreements.digest,
        "agreements": [describe(a, today) for a in agreements.items.values()],
    }


def text(agreements: Agreements, today: date) -> str:
    if not agreements.configured:
        return (
            "no [agreements]: no sharing policy applies (routes alone decide, messages go "
            "whole) and nothing is recognised"
        )
    lines = [f"agreements (digest {agreements.digest}), today {today.isoformat()} UTC"]
    for a in agreements.items.values():
        d = describe(a, today)
        until = d["effective_until"] or "open-ended"
        effect = "in effect today" if d["in_effect"] else "not in effect today"
        lines += [
            "",
            f"{a.id}: {', '.join(a.partners)}; {a.status}, {effect}",
            f"  effective {d['effective_from']} to {until}",
            f"  digest {a.digest}",
        ]
        if a.recognises:
            mapping = ", ".join(f"their {k} as our {v}" for k, v in a.recognises.items())
            lines.append(f"  recognises {mapping}")
        else:
            lines.append("  recognises no programme")
        for code in a.benefits:
            lines.append(f"  benefit {code}: {BENEFITS[code]}")
        for share in a.shares.values():
            ways = [w for w, on in (("send", share.send), ("receive", share.receive)) if on]
            fields = ", ".join(share.fields) if share.fields else "the whole message"
            lines.append(
                f"  {share.body_type.rpartition('.')[2]}: {' and '.join(ways) or 'neither'}; "
                f"fields: {fields}"
            )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    agreements = load_config(args.config).agreements
    today = datetime.now(UTC).date()
    if args.json:
        print(json.dumps(report(agreements, today), sort_keys=True))
    else:
        print(text(agreements, today))
    return 0
