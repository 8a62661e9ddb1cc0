"""Attacks on who sends what to whom (issue 14, family "routing"): a partner that names another
sender, relays another partner's envelope, addresses a hub it is not talking to, or speaks for
an administration it is not. Each is refused with its status and reason and a signed REJECTED
receipt, nothing is stored, and SG is still served (tests/adversarial/conditions.py)."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from hub.cli.demo import sample_aeo_status
from tests.adversarial.conditions import refused_with
from tests.conftest import Federation
from tests.test_exchange import signed_envelope

CASES = [
    (
        "a sender that is not the certificate's party",
        {"signer": "CN", "sender": "SG"},
        grpc.StatusCode.PERMISSION_DENIED,
        "sender-mismatch",
    ),
    (
        "SG's envelope relayed over CN's connection",
        {"signer": "SG", "sender": "SG"},
        grpc.StatusCode.UNAUTHENTICATED,
        "signature-invalid",
    ),
    (
        "an envelope addressed to another administration",
        {"recipient": "AU"},
        grpc.StatusCode.FAILED_PRECONDITION,
        "wrong-recipient",
    ),
    (
        "an AEO status of another issuing administration",
        {"document": sample_aeo_status(issuer="NZ", aeo_id="NZAEO1")},
        grpc.StatusCode.PERMISSION_DENIED,
        "not-issuer",
    ),
]


@pytest.mark.parametrize(("case", "how", "status", "reason"), CASES, ids=[c[0] for c in CASES])
async def test_routing_attacks_are_refused(
    federation: Federation,
    pki: Path,
    case: str,
    how: dict[str, object],
    status: grpc.StatusCode,
    reason: str,
) -> None:
    nz = await federation.start("NZ")
    data, _ = signed_envelope(pki, **how)  # type: ignore[arg-type]
    await refused_with(pki, nz, data, status, reason)
