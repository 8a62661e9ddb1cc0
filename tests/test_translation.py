"""Translation away from the event loop (hub/translation.py): small documents on the calling
thread, large ones in a spawned worker process, with the same results and the same refusals
(reason, line, path) either way; a worker process that dies refuses only its document."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from adapters.formats import Translators
from hub.errors import TranslationError
from hub.translation import ISOLATE_BYTES, Translation
from tests.testdata import DATA

OPERATORS = (DATA / "aeo-csv" / "operators.csv").read_bytes()


def large_csv() -> bytes:
    """An AEO operator list over ISOLATE_BYTES: the sample's rows again and again, with ids
    made unique, and one bad row near the end."""
    header, *rows = OPERATORS.decode().splitlines()
    out = [header]
    n = 0
    while sum(len(line) + 1 for line in out) <= ISOLATE_BYTES:
        for row in rows:
            n += 1
            fields = row.split(",")
            fields[0] = f"NZAEO{n:07d}"
            out.append(",".join(fields))
    out.append("NZAEOBAD,NZ1,Bad Row Ltd,AEOS,not-a-status,2019-03-01,,1,NZ,,")
    return ("\n".join(out) + "\n").encode()


@pytest.fixture
def translation() -> Translation:
    translation = Translation(Translators(), None)
    yield translation  # type: ignore[misc]
    translation.close()


def test_a_large_file_reads_the_same_in_the_worker_process(translation: Translation) -> None:
    data = large_csv()
    assert len(data) > ISOLATE_BYTES
    found, items = translation.decode_file("", data, "operators.csv")
    assert translation.isolated == 1
    direct = Translators().reader("aeo-csv").decode_all(data, "operators.csv")  # type: ignore[attr-defined]
    assert found == "aeo-csv"
    assert [(i.line, i.message) for i in items] == [(i.line, i.message) for i in direct]

    def refusals(found: list) -> list[tuple[object, ...]]:  # type: ignore[type-arg]
        return [
            (type(i.error), i.error.reason, i.error.line, i.error.path, i.error.message)
            for i in found
            if i.error is not None
        ]

    assert refusals(items) and refusals(items) == refusals(direct)
    assert refusals(items)[-1][1] == "csv-field-invalid"  # the bad row at the end


def test_small_documents_stay_in_the_process(translation: Translation) -> None:
    found, items = translation.decode_file("aeo-csv", OPERATORS, "operators.csv")
    assert found == "aeo-csv" and items and translation.isolated == 0


def test_a_large_documents_refusal_comes_back_whole(translation: Translation) -> None:
    junk = b"<Declaration>\n" + b" " * ISOLATE_BYTES + b"\n<"  # ends inside a tag
    with pytest.raises(TranslationError) as refused:
        translation.decode("wco-xml", junk)
    assert translation.isolated == 1
    assert (refused.value.reason, refused.value.line) == ("not-well-formed", 3)


def test_a_worker_process_that_dies_refuses_only_its_document(translation: Translation) -> None:
    """The process is killed while it translates: that document is refused with
    translation-failed, and the next one gets a new process."""
    slow = b"UNA:+.? '\nUNB+UNOC:3+SG+CN+261125:0320+1'\nUNH+1+CUSRES:D:96B:UN'\n" + (
        b"FTX+AAH++PHYSICAL:CTY:ZZZ'\n" * 200_000
    )  # seconds of work for the EDIFACT reader
    outcome: list[BaseException] = []

    def translate() -> None:
        try:
            translation.decode("edifact", slow)
        except BaseException as exc:  # noqa: BLE001 - kept for the assertion below
            outcome.append(exc)

    thread = threading.Thread(target=translate)
    thread.start()
    deadline = time.monotonic() + 30
    while True:  # the worker process, once it is there
        process = translation._process
        pids = list(process._processes) if process is not None and process._processes else []
        if pids or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert pids, "no worker process started"
    time.sleep(1.0)  # it is reading the document
    os.kill(pids[0], signal.SIGKILL)
    thread.join(timeout=30)
    [error] = outcome
    assert isinstance(error, TranslationError) and error.reason == "translation-failed"
    # the next large document is translated by a new process
    found, items = translation.decode_file("aeo-csv", large_csv(), "operators.csv")
    assert found == "aeo-csv" and len([i for i in items if i.message is not None]) > 100
