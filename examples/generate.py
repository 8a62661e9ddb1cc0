"""Writes the example documents that the README's commands use, from the demo's samples.

    python examples/generate.py          # rewrites examples/ in place

`tests/test_examples.py` runs `examples()` and fails when a committed file differs from what it
makes, so the examples always decode with today's translators. Every document here is made up:
no real operator, declaration or inspection is named.
"""

from __future__ import annotations

import dataclasses
import sys
from datetime import UTC, datetime
from pathlib import Path

from lxml import etree

from adapters.base import encode_all
from adapters.edifact.translator import Edifact
from adapters.formats import registry
from hub.cli.demo import sample_aeo_status, sample_control_result, sample_declaration
from hub.core.messages import AeoStatus
from hub.pb.customs_hub.v1 import aeo_pb2, control_pb2

HERE = Path(__file__).resolve().parent


def operators() -> list[AeoStatus]:
    """A short AEO list of New Zealand's programme: valid, suspended, and a customs-simplifications
    authorisation."""
    valid = sample_aeo_status("NZ", "NZAEO10077")
    suspended = sample_aeo_status("NZ", "NZAEO10342")
    suspended.tin, suspended.name = "NZ9429047654321", "Tasman Timber Shippers Ltd"
    suspended.status = aeo_pb2.AEO_STANDING_SUSPENDED
    suspended.reason = "Under review after an audit finding"
    suspended.revision = 7
    simplifications = sample_aeo_status("NZ", "NZAEO20519")
    simplifications.tin, simplifications.name = "NZ9429040011223", "Southern Cross Brokers Ltd"
    simplifications.programme = aeo_pb2.AEO_PROGRAMME_CUSTOMS_SIMPLIFICATIONS
    simplifications.revision = 1
    return [valid, suspended, simplifications]


def examples() -> dict[str, bytes]:
    """File name -> content: each document in the format its name says."""
    formats = registry()
    json = formats["proto-json"]
    declaration, control = sample_declaration(), sample_control_result()
    control.stage = control_pb2.CONTROL_STAGE_RELEASED  # inspected, no findings, released
    # Written by SG's inspection system to CN, at a fixed time so that the bytes are the same
    # each time they are made.
    edifact = formats["edifact"]
    if not isinstance(edifact, Edifact):
        raise TypeError(f"the edifact format is {type(edifact).__name__}, not the hub's own")
    edifact = dataclasses.replace(
        edifact,
        sender="SG",
        recipient="CN",
        clock=lambda: datetime(2026, 11, 25, 3, 20, tzinfo=UTC),
    )
    return {
        "declaration.json": json.encode(declaration),
        "declaration.xml": indented(formats["wco-xml"].encode(declaration)),
        "aeo-status.json": json.encode(sample_aeo_status()),
        "control-result.json": json.encode(control),
        "cusres.edi": edifact.encode(control),
        "operators.csv": encode_all(formats["aeo-csv"], operators()),
    }


def indented(xml: bytes) -> bytes:
    """The translator writes no whitespace between elements; an example is read by people."""
    root = etree.fromstring(xml)
    etree.indent(root, space="  ")
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8")) + b"\n"


def main() -> int:
    for name, content in examples().items():
        (HERE / name).write_bytes(content)
        print(HERE / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
