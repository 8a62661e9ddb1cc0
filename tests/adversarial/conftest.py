"""Fixtures the attack families share with the tests they came from, and the telemetry probe
every attack runs under: each hub an attack starts traces and meters into memory, and the
attack fails if anything but the few things telemetry may hold (message ids, types, partners,
reason codes, outcomes, numbers) reached a span or a metric label (tests/telemetryprobe.py)."""

from collections.abc import Iterator

import pytest

from tests.telemetryprobe import Probe, install
from tests.test_audit import audited  # noqa: F401 - a hub with a trail, its Audit service and tokens
from tests.test_trail_export import signed_trail  # noqa: F401 - a store with a signed trail


@pytest.fixture(autouse=True)
def telemetry_probe(monkeypatch: pytest.MonkeyPatch) -> Iterator[Probe]:
    probe = install(monkeypatch)
    yield probe
    problems = probe.problems()
    assert not problems, "telemetry holds what it must not:\n" + "\n".join(problems[:20])
