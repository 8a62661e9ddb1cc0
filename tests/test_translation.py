"""Translation where it costs the event loop least (hub/app/translation.py): light documents on
the loop, other small ones on the calling thread, large ones in a spawned worker process,
with the same results and the same refusals (reason, line, path) either way; a worker process
that dies refuses only its document."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable

import pytest
from google.protobuf.message import Message

from adapters.formats import Translators
from hub.app.translation import ISOLATE_BYTES, Translation
from hub.core.errors import TranslationError
from tests.conftest import Federation
from tests.testdata import DATA, TESTS

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


SLOW_EDIFACT = b"UNA:+.? '\nUNB+UNOC:3+SG+CN+261125:0320+1'\nUNH+1+CUSRES:D:96B:UN'\n" + (
    b"FTX+AAH++PHYSICAL:CTY:ZZZ'\n" * 100_000
)  # seconds of work for the EDIFACT reader, then refused


def worker_pid(translation: Translation, other_than: int = 0, seconds: float = 30) -> int:
    """The worker process's pid, once there is one (and it is not ``other_than``)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        process = translation._process
        pids = list(process._processes) if process is not None and process._processes else []
        if pids and pids[0] != other_than:
            return int(pids[0])
        time.sleep(0.02)
    raise AssertionError("no worker process started")


def in_thread(work: Callable[[], object]) -> tuple[threading.Thread, list[object]]:
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(work())
        except BaseException as exc:  # noqa: BLE001 - kept for the assertions
            outcome.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


@pytest.mark.slow
def test_documents_of_a_worker_process_that_dies_are_translated_by_the_next(
    translation: Translation,
) -> None:
    """The process is killed while it reads a document, with another queued behind it: both
    are translated by the next process and get their own answers."""
    slow, slow_outcome = in_thread(lambda: translation.decode("edifact", SLOW_EDIFACT))
    first = worker_pid(translation)
    time.sleep(0.5)
    behind, behind_outcome = in_thread(
        lambda: translation.decode_file("aeo-csv", large_csv(), "operators.csv")
    )
    time.sleep(0.5)
    os.kill(first, signal.SIGKILL)
    slow.join(timeout=60)
    behind.join(timeout=60)
    [error] = slow_outcome
    assert isinstance(error, TranslationError) and error.reason.startswith("edifact-")
    [(found, items)] = behind_outcome  # type: ignore[misc]
    assert found == "aeo-csv" and len([i for i in items if i.message is not None]) > 100


@pytest.mark.slow
def test_a_document_that_ends_two_processes_is_refused(translation: Translation) -> None:
    slow, outcome = in_thread(lambda: translation.decode("edifact", SLOW_EDIFACT))
    first = worker_pid(translation)
    time.sleep(0.5)
    os.kill(first, signal.SIGKILL)
    second = worker_pid(translation, other_than=first)
    time.sleep(0.5)
    os.kill(second, signal.SIGKILL)
    slow.join(timeout=60)
    [error] = outcome
    assert isinstance(error, TranslationError) and error.reason == "translation-failed"
    # and the next large document gets a new process
    found, items = translation.decode_file("aeo-csv", large_csv(), "operators.csv")
    assert found == "aeo-csv" and len([i for i in items if i.message is not None]) > 100


def test_light_documents_are_those_their_format_translates_in_a_few_milliseconds_at_worst(
    translation: Translation,
) -> None:
    xml = (TESTS.parent / "examples" / "declaration.xml").read_bytes()
    edifact = (DATA / "edifact" / "cusres_released.edi").read_bytes()
    assert translation.light("wco-xml", xml) and translation.light("", xml)  # detected
    assert not translation.light("wco-xml", xml + b" " * 32 * 1024)  # over 32 KiB
    # the shape that costs most a tag: a wrapper of empty responses (5 ms at 500)
    responses = b"<MetaData>" + b"<Response/>" * 500 + b"</MetaData>"
    assert len(responses) < 8 * 1024 and not translation.light("wco-xml", responses)
    assert translation.light("proto-json", b'{"aeoStatus": {}}' + b" " * 1024)
    assert not translation.light("proto-json", b'{"aeoStatus": {}}' + b" " * 2048)
    # EDIFACT (some 0.6 us a byte) and formats that do not say are never translated on the loop
    assert not translation.light("edifact", edifact) and not translation.light("", edifact)
    assert not translation.light("aeo-csv", OPERATORS)
    # what no format reads is refused as cheaply as it is judged
    assert translation.light("no-such-format", b"x") and translation.light("", b"\x00\x01")


def translated_where(translation: Translation) -> list[tuple[str, str]]:
    """From now on, the format and thread name of every document ``translation`` decodes."""
    where: list[tuple[str, str]] = []
    decode = translation.decode

    def recording(format_id: str, content: bytes) -> Message:
        where.append((format_id, threading.current_thread().name))
        return decode(format_id, content)

    translation.decode = recording  # type: ignore[method-assign]
    return where


async def test_the_hub_translates_light_documents_on_the_loop_and_others_on_its_threads(
    federation: Federation,
) -> None:
    nz = await federation.start("NZ")
    where = translated_where(nz.hub.translation)
    xml = (TESTS.parent / "examples" / "declaration.xml").read_bytes()
    edifact = (DATA / "edifact" / "cusres_released.edi").read_bytes()
    await nz.hub.translate("wco-xml", xml)
    await nz.hub.translate("edifact", edifact)
    assert where[0] == ("wco-xml", threading.current_thread().name)  # the loop's thread
    assert where[1][0] == "edifact" and where[1][1].startswith("hub-NZ-work")


def test_a_failing_observer_does_not_lose_the_translation() -> None:
    """The observer is the hub's metrics: a failure there must not turn a document that
    translated into an error."""
    translators = Translators()
    data = b"\n".join(OPERATORS.splitlines()[:2]) + b"\n"  # the header and one operator
    told: list[tuple[str, str]] = []

    def observe(format_id: str, direction: str, seconds: float) -> None:
        told.append((format_id, direction))
        raise ValueError("a metrics bug")

    translators.observe = observe
    message = translators.decode("aeo-csv", data)
    assert isinstance(message, Message)
    assert told == [("aeo-csv", "decode")]
