"""``customs-hub status``: what an operator checks first, read from the store and the
certificates the config names. It only reads: it never creates, migrates or writes a table,
and a store that does not answer is one line and exit code 2."""

from __future__ import annotations

import asyncio
import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from hub.app import keys
from hub.app.crlfetch import Outcome, read_outcome
from hub.cli import tables
from hub.config import HubConfig
from hub.core.errors import HubError, StoreError
from hub.core.revocation import STOPPED_PREFIX, stopped_reason
from hub.core.times import rfc3339
from hub.store import migrate
from hub.store.db import Store
from hub.store.engine import masked_url, schema_problem
from hub.store.schema import TrailCheckpoint, as_utc, utcnow
from hub.store.views import PartnerStatus

# Certificates that end within this long are flagged: a month leaves time to have a new one
# issued by the CA and, for partners' certificates, exchanged with the partner.
EXPIRY_WARNING = timedelta(days=30)


class StoreUnreachable(Exception):
    """The store did not answer; the message is the one line to print."""


@dataclass(frozen=True)
class Status:
    party: str
    at: datetime
    store_url: str  # password masked
    store_kind: str  # sqlite, postgresql
    schema: str  # the store's schema revision, as ``0002 (partner backoff)``
    partners: list[PartnerStatus]
    trail_size: int
    checkpoint: TrailCheckpoint | None
    certificates: list[tuple[str, str, datetime]]  # config key, subject, not after
    # each revocation list: (anchor's party, file, next update, serials revoked, policy when
    # stale); or the reason they cannot be read
    crls: list[tuple[str, str, datetime, int, str]]
    crl_problem: str = ""
    # each list fetched from a distribution point: (config table, URL, its last outcome)
    fetches: list[tuple[str, str, Outcome | None]] = field(default_factory=list)


def read_status(config: HubConfig, now: datetime | None = None) -> Status:
    """The hub's status now; StoreUnreachable if its store does not answer."""
    url = make_url(config.store_url)
    if url.get_backend_name() == "sqlite" and not Path(url.database or "").is_file():
        # opening it would create an empty database file
        raise StoreUnreachable(f"the store {masked_url(config.store_url)} does not exist")
    return asyncio.run(_read(config, now or utcnow()))


async def _read(config: HubConfig, now: datetime) -> Status:
    shown = masked_url(config.store_url)
    kind = make_url(config.store_url).get_backend_name()
    store = Store(config.store_url)
    try:
        schema = await store.db.schema_state()
        if schema.status != "current":  # this release's queries may not fit its tables
            hint = f"customs-hub db upgrade --config {config.path}"
            raise StoreUnreachable(f"the store {shown}: {schema_problem(schema, hint)}")
        partners = await store.views.partner_status()
        size = await store.trail.size()
        checkpoint = await store.trail.checkpoint_at()
    except StoreError as exc:
        raise StoreUnreachable(f"the store {shown} does not answer: {exc}") from None
    finally:
        await store.close()
    for party in config.partners:  # configured partners with nothing sent yet
        partners.setdefault(party, PartnerStatus(party, None, 0, 0, 0, None))
    crls, crl_problem = _crls(config)
    fetches = _fetches(config) if not crl_problem else []
    return Status(
        config.party,
        now,
        shown,
        kind,
        migrate.describe(schema.found),
        [partners[p] for p in sorted(partners)],
        size,
        checkpoint,
        keys.certificates(config),
        crls,
        crl_problem,
        fetches,
    )


def _crls(config: HubConfig) -> tuple[list[tuple[str, str, datetime, int, str]], str]:
    """The revocation lists the config names, as the hub reads them (hub/app/keys.py)."""
    try:
        revocation = keys.read_revocation(config)
    except HubError as exc:
        return [], exc.message
    return [
        (party, crl.source, crl.next_update, len(crl.serials), anchor.stale_policy)
        for party, anchor in sorted(revocation.anchors.items())
        for crl in anchor.crls
    ], ""


def _fetches(config: HubConfig) -> list[tuple[str, str, Outcome | None]]:
    """The last outcome of each list the hub fetches (hub/app/crlfetch.py keeps it beside the
    list's file)."""
    try:
        sources = keys.crl_sources(config)
    except HubError:
        return []
    return [(s.key, s.url, read_outcome(s.target)) for s in sources]


def _stop(partner: PartnerStatus) -> tuple[str, str] | None:
    """(reason, sentence) if delivery to the partner is stopped (docs/adr/0009)."""
    reason = stopped_reason(partner.last_error)
    if reason is None:
        return None
    return reason, partner.last_error.removeprefix(STOPPED_PREFIX).removeprefix(reason + ": ")


def _crl_state(now: datetime, next_update: datetime) -> str:
    """ "stale" past its next update (the hub then refuses that CA's certificates, or lets
    them through, per its policy), "due" within a day of it, "current" otherwise."""
    if now > next_update:
        return "stale"
    return "due" if next_update - now <= CRL_DUE else "current"


# a revocation list this close to its next update is flagged "due": its CA should issue the
# next one now, before the hub refuses that CA's certificates
CRL_DUE = timedelta(days=1)


def _age(now: datetime, then: datetime | None) -> float | None:
    return None if then is None else round((now - as_utc(then)).total_seconds(), 3)


def _state(now: datetime, not_after: datetime) -> str:
    if not_after <= now:
        return "expired"
    return "expiring" if not_after - now <= EXPIRY_WARNING else "ok"


def as_json(status: Status) -> str:
    now = status.at
    checkpoint = status.checkpoint
    document: dict[str, Any] = {
        "party": status.party,
        "at": rfc3339(now),
        "schema": status.schema,
        "store": {"url": status.store_url, "kind": status.store_kind},
        "partners": [
            {
                "partner": p.partner,
                "last_success": rfc3339(p.last_success) if p.last_success else None,
                "queued": p.queued,
                "oldest_queued_age_seconds": _age(now, p.oldest_queued),
                "retrying": p.retrying,
                "dead": p.dead,
                "retry_at": rfc3339(p.retry_at) if p.retry_at else None,
                "failures": p.failures,
                "stopped": (_stop(p) or (None,))[0],
                "stop_detail": (_stop(p) or (None, None))[1],
            }
            for p in status.partners
        ],
        "trail": {
            "size": status.trail_size,
            "checkpoint": None
            if checkpoint is None
            else {
                "size": checkpoint.size,
                "signed_at": rfc3339(checkpoint.signed_at),
                "age_seconds": _age(now, checkpoint.signed_at),
            },
        },
        "revocation_lists": [
            {
                "party": party,
                "file": source,
                "next_update": rfc3339(next_update),
                "revoked": revoked,
                "state": _crl_state(now, next_update),
                "when_stale": policy,
            }
            for party, source, next_update, revoked, policy in status.crls
        ],
        "revocation_problem": status.crl_problem or None,
        "revocation_fetches": [
            {
                "table": key,
                "url": url,
                "at": rfc3339(outcome.at) if outcome else None,
                "ok": outcome.ok if outcome else None,
                "outcome": outcome.text if outcome else None,
            }
            for key, url, outcome in status.fetches
        ],
        "certificates": [
            {
                "key": key,
                "subject": subject,
                "not_after": rfc3339(not_after),
                "state": _state(now, not_after),
            }
            for key, subject, not_after in status.certificates
        ],
    }
    return json.dumps(document, sort_keys=True)


def _duration(seconds: float | None) -> str:
    """An age as people read it: 45s, 12m5s, 3h20m, 2d4h."""
    if seconds is None:
        return "-"
    whole = int(seconds)
    if whole >= 86400:
        return f"{whole // 86400}d{whole % 86400 // 3600}h"
    if whole >= 3600:
        return f"{whole // 3600}h{whole % 3600 // 60}m"
    if whole >= 60:
        return f"{whole // 60}m{whole % 60}s"
    return f"{whole}s"


def _next_try(now: datetime, partner: PartnerStatus) -> str:
    """When a partner backing off is tried next: "in 42s", "due" once that time has come;
    "STOPPED (reason)" while it is stopped."""
    stop = _stop(partner)
    if stop is not None:
        return f"STOPPED ({stop[0]})"
    retry_at = partner.retry_at
    if retry_at is None:
        return "-"
    wait = (as_utc(retry_at) - now).total_seconds()
    return f"in {_duration(math.ceil(wait))}" if wait > 0 else "due"


def as_text(status: Status) -> str:
    now = status.at
    lines = [
        f"hub {status.party} at {rfc3339(now, 'seconds')}",
        f"store: {status.store_url} ({status.store_kind}), schema revision {status.schema}",
        "",
        tables.render(
            ("PARTNER", "LAST SUCCESS", "QUEUED", "OLDEST QUEUED", "RETRYING", "DEAD", "NEXT TRY"),
            (
                (
                    p.partner,
                    rfc3339(p.last_success, "seconds") if p.last_success else "never",
                    str(p.queued),
                    _duration(_age(now, p.oldest_queued)),
                    str(p.retrying),
                    str(p.dead),
                    _next_try(now, p),
                )
                for p in status.partners
            ),
        ),
        "",
    ]
    for p in status.partners:
        stop = _stop(p)
        if stop is not None:
            lines.append(
                f"{p.partner}: delivery stopped, {p.queued} message(s) kept queued: {stop[1]}"
            )
    if lines[-1]:
        lines.append("")
    checkpoint = status.checkpoint
    if checkpoint is None:
        lines.append(f"trail: {status.trail_size} entries, no checkpoint signed yet")
    else:
        lines.append(
            f"trail: {status.trail_size} entries; latest checkpoint at {checkpoint.size} "
            f"entries, signed {rfc3339(checkpoint.signed_at, 'seconds')} "
            f"({_duration(_age(now, checkpoint.signed_at))} ago)"
        )
    lines.append("")
    if status.crl_problem:
        lines.append(f"revocation lists: NOT READABLE: {status.crl_problem}")
    elif status.crls:
        late = [c for c in status.crls if _crl_state(now, c[2]) != "current"]
        if not late:
            earliest = min(c[2] for c in status.crls)
            lines.append(
                f"revocation lists: all {len(status.crls)} current (the first next update "
                f"{rfc3339(earliest, 'seconds')})"
            )
        else:
            lines.append(
                tables.render(
                    ("REVOCATION LIST", "PARTY", "STATE", "NEXT UPDATE", "REVOKED", "WHEN STALE"),
                    (
                        (
                            source,
                            party,
                            _crl_state(now, next_update).upper(),
                            rfc3339(next_update, "seconds"),
                            str(revoked),
                            policy,
                        )
                        for party, source, next_update, revoked, policy in late
                    ),
                )
            )
    else:
        lines.append("revocation lists: none configured")
    for key, url, outcome in status.fetches:
        if outcome is None:
            lines.append(f"{key}: revocation list from {url or '(no URL)'}: not fetched yet")
        else:
            lines.append(
                f"{key}: revocation list from {url or '(no URL)'}: "
                f"{'fetched' if outcome.ok else 'FETCH FAILED'} "
                f"{rfc3339(outcome.at, 'seconds')}: {outcome.text}"
            )
    flagged = [c for c in status.certificates if _state(now, c[2]) != "ok"]
    lines.append("")
    if not flagged:
        lines.append(
            f"certificates: all {len(status.certificates)} valid for more than "
            f"{EXPIRY_WARNING.days} days"
        )
    else:
        lines.append(
            tables.render(
                ("CERTIFICATE", "STATE", "NOT AFTER", "SUBJECT"),
                (
                    (key, _state(now, not_after).upper(), rfc3339(not_after, "seconds"), subject)
                    for key, subject, not_after in flagged
                ),
            )
        )
    return "\n".join(lines)
