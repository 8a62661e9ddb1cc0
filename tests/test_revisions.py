"""State that changes over time: a late older revision never overwrites a newer one.

Hypothesis plays the network: CN's hub signs a history of AEO status and control result
changes; the deliveries reach NZ's hub shuffled, duplicated and split into frames at random.
Whatever the order, NZ's current state must equal CN's latest revision of each thing.
"""

from __future__ import annotations

import asyncio
import itertools
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.app.hub import Hub
from hub.cli.demo import sample_aeo_status, sample_control_result
from hub.config import load_config, render_config
from hub.core.envelope import build_envelope
from hub.core.messages import ControlResult
from hub.core.revisions import StateKey, StateRef, control_key, newer_wins
from hub.pb.customs_hub.v1 import envelope_pb2 as pb
from hub.store.db import Store
from tests.test_exchange import signer_of

AEO_IDS = ["CNAEO1", "CNAEO2", "CNAEO3"]
DECLARATIONS = ["26CN000000000000A1", "26CN000000000000B2"]


def history_step() -> st.SearchStrategy[tuple[str, str]]:
    return st.one_of(
        st.tuples(st.just("aeo"), st.sampled_from(AEO_IDS)),
        st.tuples(st.just("control"), st.sampled_from(DECLARATIONS)),
    )


def document(kind: str, key: str, revision: int) -> object:
    if kind == "aeo":
        status = sample_aeo_status("CN", key)
        status.revision = revision
        return status
    result: ControlResult = sample_control_result()
    result.declaration_id = key
    result.revision = revision
    return result


async def deliver_in_order(
    pki: Path, history: list[tuple[str, str]], order: list[int], cuts: list[int]
) -> tuple[dict[tuple[str, str], int], dict[tuple[str, str], int], list[bool]]:
    """(CN's latest revisions, NZ's held revisions, NZ's superseded flags in arrival order)"""
    with tempfile.TemporaryDirectory() as tmp:
        hubdir = Path(tmp)
        (hubdir / "hub.toml").write_text(
            render_config(
                party="NZ",
                listen="127.0.0.1:0",
                domestic_listen="127.0.0.1:0",
                pki=pki,
                partners={"CN": "127.0.0.1:1"},
                store=f"sqlite:///{hubdir / 'hub.db'}",
            )
        )
        config = load_config(hubdir / "hub.toml")
        store = Store(config.store_url)
        try:
            await store.prepare(create=True)
            nz = Hub(config, store)
            cn = signer_of(pki, "CN")
            now = datetime.now(UTC)
            latest: dict[tuple[str, str], int] = {}
            envelopes = []
            for revision, (kind, key) in enumerate(history, start=1):
                doc = document(kind, key, revision)
                state_key = key if kind == "aeo" else control_key(doc)  # type: ignore[arg-type]
                latest[(kind, state_key)] = revision
                data, _ = build_envelope(
                    cn,
                    sender="CN",
                    recipient="NZ",
                    document=doc,  # type: ignore[arg-type]
                    created_at=now,
                    ttl=timedelta(hours=1),
                )
                envelopes.append(data)
            arriving = [envelopes[i] for i in order]
            bounds = sorted({0, len(arriving), *(c % (len(arriving) + 1) for c in cuts)})
            frames = [arriving[a:b] for a, b in itertools.pairwise(bounds)]
            # frames arrive concurrently, as from several streams, and are group-committed
            results = await asyncio.gather(*(nz.ingress.receive_batch(f, "CN") for f in frames))
            for frame in results:
                for r in frame:
                    assert isinstance(r, pb.SignedReceipt), r
            held = {(s.kind, s.key): s.revision for s in await store.inbound.current_state("CN")}
            superseded = [m.superseded for m in await store.views.inbound()]
            await nz.close()
            return latest, held, superseded
        finally:
            await store.close()


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_final_state_is_the_senders_latest_whatever_the_delivery_order(
    pki: Path, data: st.DataObject
) -> None:
    history = data.draw(st.lists(history_step(), min_size=1, max_size=12), label="history")
    indices = list(range(len(history)))
    # every message at least once, some twice or three times (resends), in any order
    extra = data.draw(st.lists(st.sampled_from(indices), max_size=8), label="duplicates")
    order = data.draw(st.permutations(indices + extra), label="order")
    cuts = data.draw(st.lists(st.integers(0, 40), max_size=4), label="frame cuts")
    latest, held, _ = asyncio.run(deliver_in_order(pki, history, order, cuts))
    assert held == latest


@pytest.mark.parametrize("kind", ["aeo", "control"])
def test_an_older_revision_arriving_late_is_recorded_as_superseded(pki: Path, kind: str) -> None:
    key = AEO_IDS[0] if kind == "aeo" else DECLARATIONS[0]
    # revision 2 arrives first, then revision 1: both are stored, the late one as superseded
    latest, held, superseded = asyncio.run(
        deliver_in_order(pki, [(kind, key), (kind, key)], [1, 0], [])
    )
    assert held == latest and next(iter(held.values())) == 2
    assert superseded == [False, True]


@given(st.lists(st.tuples(st.sampled_from("ab"), st.integers(1, 6)), max_size=12))
def test_newer_wins_keeps_the_highest_revision_of_each_state_in_any_order(
    arrivals: list[tuple[str, int]],
) -> None:
    """The rule alone (hub/core/revisions.py): a revision wins exactly when it is higher than
    every one before it for the same state, so the held revision ends as the maximum, and an
    equal or lower one arriving late never wins."""
    held: dict[StateKey, int] = {}
    best: dict[str, int] = {}
    for key, revision in arrivals:
        won = newer_wins(held, StateRef("CN", "aeo", key, revision))
        assert won == (revision > best.get(key, 0))
        best[key] = max(best.get(key, 0), revision)
    assert held == {("CN", "aeo", key): revision for key, revision in best.items()}


def test_a_padded_reference_is_the_same_state_as_the_plain_one() -> None:
    """Keys are taken as business keys are, without surrounding spaces: a partner that pads an
    MRN, LRN, container or AEO id updates the same state, not a second one."""
    from hub.core.messages import AeoStatus
    from hub.core.revisions import state_of

    assert control_key(ControlResult(declaration_id=" MRN1 ")) == "mrn:MRN1"
    assert control_key(ControlResult(functional_reference_id="LRN1  ")) == "lrn:LRN1"
    padded = ControlResult(container_ids=[" MSKU2", "MSKU1 ", "MSKU1", "  "])
    assert control_key(padded) == "containers:MSKU1,MSKU2"
    status = AeoStatus(issuing_administration="NZ", aeo_id="  NZAEO1 ", revision=2)
    assert state_of(status, "NZ") == StateRef("NZ", "aeo", "NZAEO1", 2)
