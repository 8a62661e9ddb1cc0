"""``customs-hub translate``: a file of documents from one registered format into another,
through the canonical protobuf.

Every document of the input is read (``adapters.base.decode_all``), then written in the target
format: as one file where the target holds many documents per file (it has ``encode_all``), or
as one file per document in ``--output-dir``. A bad document inside a multi-document file is
reported on its own line and costs only itself.

What it must never do: leave half a file behind (every file is written under a temporary name,
synced and renamed into place), write anything when it exits with code 2 for a refusal of the
input, or print document content (errors are the translators' own, which never quote payload
text).
"""

from __future__ import annotations

import argparse
import mimetypes
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from google.protobuf.message import Message

from adapters.base import DECODE, ENCODE, Item, Translator, decode_all, encode_all
from adapters.formats import detect, translator_for
from hub import files
from hub.config import load_config
from hub.core.codelists import NO_CODE_LISTS
from hub.core.errors import HubError, TranslationError

EXIT_OK = 0
EXIT_PARTIAL = 1  # some documents refused, each reported; the others were written
EXIT_REFUSED = 2  # nothing translated (the `main` handler turns errors into this code)

# The usual file name endings of the hub's own media types; other formats get the one the
# platform's MIME table gives, else their format id.
EXTENSIONS = {
    "application/json": ".json",
    "application/xml": ".xml",
    "text/csv": ".csv",
    "application/edifact": ".edi",
}

EPILOG = """\
Every document in FILE is translated. A target that holds many documents per file (such as
aeo-csv or edifact) gets one file: OUT, or standard output. A target that holds one (such as
wco-xml or proto-json) needs --output-dir when FILE holds several, and gets one file per
document there, named after FILE's stem, the document's line (else its number) and the
format's ending, e.g. operators.3.json. --output-dir writes one file per document for any
target. Every file is written under a temporary name and renamed into place.

Refused documents are printed on standard error, one per line, as FILE:LINE: reason: message.

exit codes:
  0  every document was translated and written
  1  some documents were refused (each printed); the others were written
  2  nothing was translated: bad arguments, an unreadable or unrecognised file, a file refused
     as a whole, no document the target can take, or an output that could not be written
"""


class TranslateCliError(HubError):
    """A refusal printed as one line that already names the file and reason (exit code 2)."""

    default_reason = "translate-refused"

    def __str__(self) -> str:
        return self.message


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    translate = sub.add_parser(
        "translate",
        help="convert documents between formats through the canonical protobuf",
        description="Translate every document in FILE into another registered format "
        "(`customs-hub formats` lists them).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    translate.add_argument("file", type=Path, metavar="FILE", help="the document file to translate")
    translate.add_argument(
        "--from", dest="from_format", metavar="FMT", help="FILE's format (default: detected)"
    )
    translate.add_argument(
        "--to", dest="to_format", metavar="FMT", required=True, help="e.g. wco-xml, proto-json"
    )
    output = translate.add_mutually_exclusive_group()
    output.add_argument(
        "-o", "--output", type=Path, metavar="OUT", help="one file; - or absent: standard output"
    )
    output.add_argument(
        "--output-dir",
        type=Path,
        metavar="DIR",
        help="one file per document in DIR (created if missing); prints each path written",
    )
    translate.add_argument(
        "--config",
        type=Path,
        help="apply this hub's XML limits and code lists (default: the built-in limits and "
        "the shipped code lists)",
    )


@dataclass(frozen=True)
class Refusal:
    """A document that was not translated: where it starts in FILE and why."""

    number: int  # 1-based position among FILE's documents
    line: int | None
    error: TranslationError


@dataclass(frozen=True)
class Translated:
    number: int
    line: int | None
    message: Message


def run(args: argparse.Namespace) -> int:
    data = _read(args.file)
    config = load_config(args.config) if args.config else None
    limits = config.limits.xml if config else None
    code_lists = config.code_lists if config else NO_CODE_LISTS
    try:
        source = translator_for(args.from_format or detect(data), limits, DECODE, code_lists)
        target = translator_for(args.to_format, limits, ENCODE, code_lists)
        items = decode_all(source, data, source=args.file.name)
    except TranslationError as exc:  # the file as a whole
        raise TranslateCliError(located(args.file, exc)) from None
    if not items:
        raise TranslateCliError(f"{args.file}: holds no document; nothing written")
    per_document = args.output_dir is not None
    if not per_document and len(items) > 1 and not holds_many(target):
        raise TranslateCliError(
            f"{args.file}: holds {len(items)} {source.format_id} documents and "
            f"{target.format_id} holds one per file; name a folder for one file each with "
            "--output-dir"
        )
    if len(items) == 1 and not per_document:
        return _translate_one(args, items[0], source, target)
    read, refused = _split(items)
    if per_document:
        return _write_each(args, read, refused, source, target)
    return _write_together(args, read, refused, source, target)


def holds_many(translator: Translator) -> bool:
    """Whether the format holds several documents in one file (``adapters.base.encode_all``)."""
    return callable(getattr(translator, "encode_all", None))


def _translate_one(
    args: argparse.Namespace, item: Item, source: Translator, target: Translator
) -> int:
    if item.error is not None:
        raise TranslateCliError(located(args.file, item.error))
    assert item.message is not None  # noqa: S101 - an Item holds a message or an error
    try:
        output = encode_all(target, [item.message])
    except TranslationError as exc:
        error = _writing(exc, item.message, source, target)
        raise TranslateCliError(located(args.file, error, line=item.line)) from None
    _emit(args.output, output)
    return EXIT_OK


def _split(items: Sequence[Item]) -> tuple[list[Translated], list[Refusal]]:
    read: list[Translated] = []
    refused: list[Refusal] = []
    for number, item in enumerate(items, start=1):
        if item.error is not None:
            refused.append(Refusal(number, item.line, item.error))
        elif item.message is not None:
            read.append(Translated(number, item.line, item.message))
    return read, refused


def _write_each(
    args: argparse.Namespace,
    read: list[Translated],
    refused: list[Refusal],
    source: Translator,
    target: Translator,
) -> int:
    total = len(read) + len(refused)
    outputs: list[tuple[Path, bytes]] = []
    ending = extension(target)
    for document in read:
        try:
            content = encode_all(target, [document.message])
        except TranslationError as exc:
            error = _writing(exc, document.message, source, target)
            refused.append(Refusal(document.number, document.line, error))
            continue
        name = f"{args.file.stem}.{document.line or document.number}{ending}"
        outputs.append((args.output_dir / name, content))
    _report(args.file, refused)
    if not outputs:
        raise _nothing_written(args.file, total, source, target)
    try:
        args.output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TranslateCliError(f"{args.output_dir}: cannot create: {exc.strerror}") from None
    for path, content in outputs:
        write_atomically(path, content)
        print(path)
    return EXIT_PARTIAL if refused else EXIT_OK


def _write_together(
    args: argparse.Namespace,
    read: list[Translated],
    refused: list[Refusal],
    source: Translator,
    target: Translator,
) -> int:
    total = len(read) + len(refused)
    try:
        output = _encoded_together(args.file, read, refused, source, target) if read else None
    finally:
        _report(args.file, refused)
    if output is None:
        raise _nothing_written(args.file, total, source, target)
    _emit(args.output, output)
    return EXIT_PARTIAL if refused else EXIT_OK


def _encoded_together(
    path: Path,
    read: list[Translated],
    refused: list[Refusal],
    source: Translator,
    target: Translator,
) -> bytes | None:
    """The documents as one file. Where the target refuses some of them on their own, those
    join ``refused`` and the others are written; None when it refuses every one."""
    try:
        return encode_all(target, [d.message for d in read])
    except TranslationError as exc:
        problem = exc
    kept: list[Translated] = []
    for document in read:
        try:
            encode_all(target, [document.message])
        except TranslationError as exc:
            error = _writing(exc, document.message, source, target)
            refused.append(Refusal(document.number, document.line, error))
        else:
            kept.append(document)
    if not kept:
        return None
    if len(kept) < len(read):
        try:
            return encode_all(target, [d.message for d in kept])
        except TranslationError as exc:
            problem = exc
    # refused together only, e.g. over a size limit, or two AEO rows with one id and revision
    raise TranslateCliError(
        f"{path}: {problem.reason}: its documents cannot be written together as "
        f"{target.format_id}: {problem.message}"
    )


def _writing(
    error: TranslationError, message: Message, source: Translator, target: Translator
) -> TranslationError:
    """A target's refusal restated for the input: which kind, from which format into which.
    Where the target placed the problem (its line, segment or element) is in the output that
    was not written, so it is named as such and not as a place in FILE."""
    place = [f"line {error.line}" if error.line else "", f"at {error.path}" if error.path else ""]
    where = " ".join(p for p in place if p)
    return TranslationError(
        f"{message.DESCRIPTOR.name} read as {source.format_id} cannot be written as "
        f"{target.format_id}: {error.message}"
        + (f" (in the {target.format_id} output: {where})" if where else ""),
        reason=error.reason,
    )


def _nothing_written(
    path: Path, documents: int, source: Translator, target: Translator
) -> TranslateCliError:
    return TranslateCliError(
        f"{path}: nothing written: none of its {documents} {source.format_id} documents "
        f"could be translated to {target.format_id}"
    )


def _report(path: Path, refused: Sequence[Refusal]) -> None:
    for refusal in sorted(refused, key=lambda r: r.number):
        print(_refusal_line(path, refusal), file=sys.stderr)


def _refusal_line(path: Path, refusal: Refusal) -> str:
    return located(path, refusal.error, line=refusal.line, number=refusal.number)


def located(
    path: Path, error: TranslationError, *, line: int | None = None, number: int | None = None
) -> str:
    """``file:line:column: reason: message [at element path]``, as the rest of the CLI; the
    error's own line where it has one, else where its document starts, else its number."""
    if error.line:
        where = f"{path}:{error.line}" + (f":{error.column}" if error.column else "")
    elif line:
        where = f"{path}:{line}"
    elif number:
        where = f"{path} (document {number})"
    else:
        where = str(path)
    suffix = f" [at {error.path}]" if error.path else ""
    return f"{where}: {error.reason}: {error.message}{suffix}"


def extension(translator: Translator) -> str:
    media_type = translator.media_type.lower()
    known = EXTENSIONS.get(media_type) or mimetypes.guess_extension(media_type)
    return known or f".{translator.format_id}"


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise TranslateCliError(f"{path}: cannot read: {exc.strerror}") from None


def _emit(output: Path | None, content: bytes) -> None:
    if output is None or str(output) == "-":
        sys.stdout.buffer.write(content)
        sys.stdout.buffer.flush()
    else:
        write_atomically(output, content)


def write_atomically(path: Path, content: bytes) -> None:
    """hub/files.py's, with a failure as this command's error."""
    try:
        files.write_atomically(path, content)
    except OSError as exc:
        raise TranslateCliError(f"{path}: cannot write: {exc.strerror}") from None
