"""The ``customs-hub`` command line: operators' and developers' entry point.

Errors are printed as one line naming the file (and line/field where known) with exit code 2;
nothing here prints key material.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import math
import os
import signal
import sys
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime, timedelta
from pathlib import Path

import grpc

from adapters.formats import detect, discovered, registry
from adapters.protojson import DOCUMENT_FIELDS, ProtoJson
from hub import __version__
from hub.app import learning
from hub.app.hub import Hub
from hub.app.telemetry import Telemetry
from hub.cli import agreements as agreementscli
from hub.cli import audit as auditcli
from hub.cli import backup as backupcli
from hub.cli import configcheck, tables
from hub.cli import db as dbcli
from hub.cli import evidence as evidencecli
from hub.cli import recognition as recognitioncli
from hub.cli import registry as registrycli
from hub.cli import registrysync as registrysynccli
from hub.cli import reload as reloadcli
from hub.cli import revoke as revokecli
from hub.cli import status as statuscli
from hub.cli import translate as translatecli
from hub.cli.pki import DEV_VALIDITY, init_federation, issue_next_signing, new_trail_key
from hub.cli.trailfiles import export_trail, read_key, verify_folder, verify_messages
from hub.config import HubConfig, TelemetryConfig, load_config, render_config
from hub.core.errors import REASON_KEY, ConfigError, HubError, TranslationError
from hub.core.messages import SHORT_NAMES, full_body_type
from hub.core.outbox import Outbound, operable
from hub.core.times import parse_since, rfc3339
from hub.logs import TEXT, formatter, use_format
from hub.pb.customs_hub.v1 import service_pb2 as spb
from hub.pb.customs_hub.v1 import service_pb2_grpc as sgrpc
from hub.rpc.status import LINE_KEY
from hub.runtime import RunningHub, start_hub
from hub.store.db import Store
from hub.store.schema import DEAD, QUEUED, MessageRow, OutboxRow, utcnow
from hub.store.views import MessageQuery

EXIT_USAGE = 2
EXIT_BAD = 1  # `trail verify`: the export does not match its signed checkpoints


log = logging.getLogger("customs_hub.service")


class CliError(Exception):
    """A problem the user can fix; printed as one line, exit code 2."""


def _parties(text: str) -> list[str]:
    parties = [p.strip() for p in text.split(",") if p.strip()]
    if len(parties) < 1:
        raise argparse.ArgumentTypeError("give at least one party id, e.g. CN,NZ,SG")
    return parties


def _partner(text: str) -> tuple[str, str]:
    name, sep, endpoint = text.partition("=")
    if not sep or not name or ":" not in endpoint:
        raise argparse.ArgumentTypeError(
            f"expected PARTY=HOST:PORT, e.g. NZ=127.0.0.1:7501; found {text!r}"
        )
    return name, endpoint


def _body_type(text: str) -> str:
    name = full_body_type(text)
    if name is None:
        raise argparse.ArgumentTypeError(
            f"expected one of {', '.join(sorted(SHORT_NAMES))}; found {text!r}"
        )
    return name


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1; found {text!r}")
    return value


# what ``messages --status`` takes: an outbound message's status, or a received one's
MESSAGE_STATUSES = [*(s.value for s in Outbound), "accepted", "superseded"]

CONFIG_HELP = "the hub's configuration file, hub.toml"
VERBOSE = "more log output (-vv for debug)"
# Libraries whose debug lines would carry what the hub never logs (aiosqlite and SQLAlchemy's
# quote every statement's parameters: document bodies, trader ids): held at WARNING even with
# -vv (docs/telemetry.md).
QUIET_LOGGERS = ("aiosqlite", "sqlalchemy", "asyncpg")
EXIT_PIPE_CLOSED = 141  # 128 + SIGPIPE, what a shell reports for a command its pipe closed


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="customs-hub", description="Customs-to-customs interoperability hub"
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help=VERBOSE)
    parser.add_argument("--version", action="version", version=f"customs-hub {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    pki = sub.add_parser("pki", help="development PKI").add_subparsers(
        dest="pki_command", required=True
    )
    pki_init = pki.add_parser(
        "init",
        help="make a development federation: a CA, TLS and signing certificates per administration",
    )
    pki_init.add_argument(
        "--parties", type=_parties, required=True, help="comma-separated party ids, e.g. CN,NZ,SG"
    )
    pki_init.add_argument("--out", type=Path, required=True, help="folder to write into")
    pki_init.add_argument(
        "--crl-url",
        default="",
        help="name this CRL distribution point in every certificate issued, {party} replaced by "
        "the party, e.g. http://127.0.0.1:8080/{party}/crl.pem (for crl_fetch = true)",
    )
    trail_key = pki.add_parser(
        "trail-key",
        help="write a new trail key and its verifier key (.vkey beside it), for a rotation",
    )
    trail_key.add_argument("--party", required=True, help="the hub's party id, e.g. CN")
    trail_key.add_argument(
        "--out", type=Path, required=True, help="the new key's file, e.g. CN/trail-2.key"
    )
    text = (
        "issue a party's next message-signing certificate and key from its CA, as "
        "PKI/PARTY/signing-N.pem and signing-N.key (rotation: docs/key-rotation.md)"
    )
    pki_next = pki.add_parser("next-signing", help=text, description=text)
    pki_next.add_argument("--pki", type=Path, required=True, help="the folder `pki init` wrote")
    pki_next.add_argument("--party", required=True, help="whose signing key, e.g. CN")
    pki_next.add_argument(
        "--days",
        type=int,
        default=DEV_VALIDITY.days,
        help="validity in days (default: %(default)s)",
    )

    init = sub.add_parser("init", help="write a working HUBDIR/hub.toml")
    init.add_argument("--party", required=True, help="this hub's party id, e.g. CN")
    init.add_argument("--pki", type=Path, required=True, help="folder made by `pki init`")
    init.add_argument(
        "--out", type=Path, required=True, help="hub folder (config and SQLite database)"
    )
    init.add_argument("--listen", default="127.0.0.1:7443", help="partner port (mTLS)")
    init.add_argument("--domestic-listen", default="127.0.0.1:7444", help="domestic port")
    init.add_argument(
        "--audit-listen",
        default="",
        metavar="HOST:PORT",
        help="auditors' port (TLS, bearer tokens), e.g. 127.0.0.1:7445; not given: no Audit "
        "service and no [audit] table",
    )
    init.add_argument(
        "--partner",
        type=_partner,
        action="append",
        default=[],
        metavar="PARTY=HOST:PORT",
        help="a partner and its partner port (repeatable)",
    )
    init.add_argument(
        "--store", default="sqlite:///hub.db", help="store URL (sqlite:///FILE or postgresql://...)"
    )

    serve = sub.add_parser("serve", help="run the hub until SIGTERM or Ctrl-C")
    serve.add_argument("--config", type=Path, required=True, help=CONFIG_HELP)

    send = sub.add_parser("send", help="submit a document to the running hub's domestic port")
    send.add_argument("--config", type=Path, required=True, help=CONFIG_HELP)
    send.add_argument(
        "--to",
        action="append",
        default=[],
        help="partner party id (repeatable); default: routing rules",
    )
    send.add_argument(
        "--correlation-id", default="", help="ties this message to others of one case"
    )
    send.add_argument(
        "file", type=Path, help='WCO DM XML, or protobuf JSON such as {"goodsDeclaration": {...}}'
    )
    send.add_argument("--from", dest="from_format", help="the file's format (default: detected)")

    messages = sub.add_parser(
        "messages",
        help="list what this hub sent and received, the most recent last",
    )
    messages.add_argument("--config", type=Path, required=True, help=CONFIG_HELP)
    messages.add_argument("--json", action="store_true", help="one JSON object per line")
    messages.add_argument("--partner", help="only messages to or from this partner")
    messages.add_argument(
        "--type",
        dest="body_type",
        metavar="TYPE",
        type=_body_type,
        help="only this kind of message: " + ", ".join(sorted(SHORT_NAMES)),
    )
    messages.add_argument(
        "--since",
        help="only messages from this time on: RFC 3339 (2026-12-07T13:05:09Z) or a duration "
        "back from now (30m, 2h, 7d)",
    )
    messages.add_argument(
        "--status",
        choices=MESSAGE_STATUSES,
        help="only messages in this status (sent: queued, delivered, rejected, dead, replaced; "
        "received: accepted, superseded)",
    )
    messages.add_argument(
        "--direction", choices=["in", "out"], help="only received (in) or sent (out) messages"
    )
    messages.add_argument(
        "--limit",
        type=_positive,
        default=MessageQuery.limit,
        help="show at most this many, the most recent",
    )

    status = sub.add_parser(
        "status",
        help="each partner's deliveries and queue, the trail's checkpoint, the store, and "
        "certificates expiring within 30 days (reads the store only)",
    )
    status.add_argument("--config", type=Path, required=True, help=CONFIG_HELP)
    status.add_argument("--json", action="store_true", help="one JSON object")

    outbox = sub.add_parser(
        "outbox",
        help="list queued, retrying and dead-lettered messages; retry or drop dead letters; "
        "drop or re-route the messages of a partner removed from the config",
        description="`outbox --config FILE` alone lists, as `outbox list` does.",
    )
    outbox.add_argument("--config", type=Path, help=CONFIG_HELP + " (to list)")
    outbox.add_argument("--json", action="store_true", help="one JSON object per line")
    actions = outbox.add_subparsers(dest="outbox_action", metavar="{list,retry,drop,reroute}")
    listing = actions.add_parser(
        "list", help="queued, retrying and dead-lettered messages, with reasons (the default)"
    )
    listing.add_argument("--config", type=Path, required=True, help=CONFIG_HELP)
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    for name, text, message_help, partner_help in (
        (
            "retry",
            "send dead letters again: as they are while their envelope is valid, else signed "
            "afresh under a new message id",
            "this dead letter (repeatable)",
            "all of this partner's dead letters",
        ),
        (
            "drop",
            "give up dead letters for good, and the queued messages of a partner no longer in "
            "the config (they stay in the store as dead); a configured partner's queued "
            "messages are being delivered and are not dropped",
            "this dead letter, or queued message of a removed partner (repeatable)",
            "all of this partner's dead letters, and its queued messages if it is no longer "
            "in the config",
        ),
    ):
        action = actions.add_parser(name, help=text, description=text)
        action.add_argument("--config", type=Path, required=True, help=CONFIG_HELP)
        action.add_argument("--message-id", action="append", default=[], help=message_help)
        action.add_argument("--partner", help=partner_help)
    text = (
        "sign a partner's messages afresh for another partner (new message ids, the same "
        "bodies, business keys and correlation ids) and mark the old ones replaced: its dead "
        "letters, and its queued messages if it is no longer in the config"
    )
    reroute = actions.add_parser("reroute", help=text, description=text)
    reroute.add_argument("--config", type=Path, required=True, help=CONFIG_HELP)
    reroute.add_argument(
        "--partner", required=True, metavar="OLD", help="the partner the messages are for now"
    )
    reroute.add_argument(
        "--to", required=True, metavar="NEW", help="a configured partner to send them to instead"
    )
    reroute.add_argument(
        "--message-id",
        action="append",
        default=[],
        help="only this message of OLD's (repeatable; default: all of them)",
    )

    translatecli.add_parser(sub)
    dbcli.add_parsers(sub)
    registrysynccli.add_actions(registrycli.add_parsers(sub))  # export; query, sync
    reloadcli.add_parser(sub)
    configcheck.add_parser(sub)
    agreementscli.add_parser(sub)

    trail_cmd = sub.add_parser(
        "trail", help="the tamper-evident trail: query it, prove entries, export and verify"
    ).add_subparsers(dest="trail_command", required=True)
    export = trail_cmd.add_parser(
        "export", help="write every entry and signed checkpoint into a folder for auditors"
    )
    export.add_argument("--config", type=Path, required=True, help=CONFIG_HELP)
    export.add_argument("-o", "--out", type=Path, required=True, help="folder to write into")
    verify = trail_cmd.add_parser(
        "verify",
        help="recompute an export's roots and check them against its signed checkpoints",
    )
    verify.add_argument("folder", type=Path, help="a folder written by `trail export`")
    verify.add_argument(
        "--key",
        required=True,
        help="the hub's verifier key: a file such as trail.vkey, or the key string",
    )
    verify.add_argument(
        "--messages",
        action="store_true",
        help="also check every exported message: its bytes hash to its leaf's digest and its "
        "sender's signature verifies with the certificate valid when it was made",
    )
    verify.add_argument("--json", action="store_true", help="the report as one JSON object")
    auditcli.add_trail_parsers(trail_cmd)
    auditcli.add_parsers(sub)
    evidencecli.add_parsers(sub)
    revokecli.add_parsers(sub)
    backupcli.add_parsers(sub)
    recognitioncli.add_parsers(sub)

    formats = sub.add_parser("formats", help="list the registered document formats")
    formats.add_argument("--json", action="store_true", help="one JSON object per line")

    demo = sub.add_parser(
        "demo", help="run a three-administration federation on loopback and exchange messages"
    )
    demo.add_argument(
        "--trace",
        action="store_true",
        help="also print one declaration's trace across CN and NZ as a tree with timings",
    )
    return parser


class HelpWithDefaults(argparse.HelpFormatter):
    """Each option's help with its default, where it has one worth saying (not for flags,
    options without a default or with one the help already names)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if (
            "%(default)" in text
            or "default" in text
            or action.required
            or not action.option_strings
            or default in (None, False, [], "", argparse.SUPPRESS)
        ):
            return text
        return f"{text} (default: %(default)s)"


def _verbose_everywhere(parser: argparse.ArgumentParser) -> None:
    """``-v`` after a command as before it: every subcommand takes it too (absent unless
    given, so the count before the command stands otherwise)."""
    for action in parser._actions:  # argparse names its subcommands only here
        if isinstance(action, argparse._SubParsersAction):
            for command in action.choices.values():
                command.formatter_class = HelpWithDefaults
                command.add_argument(
                    "-v", "--verbose", action="count", default=argparse.SUPPRESS, help=VERBOSE
                )
                _verbose_everywhere(command)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    parser.formatter_class = HelpWithDefaults
    _verbose_everywhere(parser)
    args = parser.parse_args(argv)
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)]
    handler = logging.StreamHandler()
    handler.setFormatter(formatter(TEXT))
    logging.basicConfig(level=level, handlers=[handler])
    for name in QUIET_LOGGERS:  # their debug lines quote statements' parameters: trade data
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        code = _dispatch(args)
        sys.stdout.flush()  # here, so that a reader that went away is seen here
        return code
    except (CliError, HubError) as exc:
        print(f"customs-hub: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # the reader closed the pipe (`customs-hub outbox | head -1`): stop quietly, as a
        # command killed by SIGPIPE would, and let nothing else try to write to it
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_PIPE_CLOSED


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "pki" and args.pki_command == "trail-key":
        return _pki_trail_key(args)
    if args.command == "pki" and args.pki_command == "next-signing":
        if args.days < 1:
            raise CliError("--days must be at least 1")
        cert, key = issue_next_signing(args.pki, args.party, validity=timedelta(days=args.days))
        print(
            f"{args.party}: next signing certificate {cert} and key {key}; put them in "
            "[signing] cert and key, the current certificate in previous_certs, and reload"
        )
        return 0
    if args.command == "pki":
        if args.crl_url and not args.crl_url.startswith(("http://", "https://")):
            raise ConfigError(
                f"--crl-url must be an http:// or https:// URL; found {args.crl_url!r}",
                reason="config-invalid",
            )
        for files in init_federation(args.out, args.parties, crl_url=args.crl_url):
            print(
                f"{files.party}: CA {files.ca_cert}, TLS {files.tls_cert}, "
                f"signing {files.signing_cert}"
            )
        return 0
    if args.command == "init":
        return _init(args)
    if args.command == "serve":
        return asyncio.run(_serve(args.config))
    if args.command == "send":
        return asyncio.run(_send(args))
    if args.command == "messages":
        return asyncio.run(_messages(args))
    if args.command == "outbox":
        return asyncio.run(_outbox(args))
    if args.command == "status":
        return _status(args)
    if args.command == "translate":
        return _translate(args)
    if args.command == "trail":
        return _trail(args)
    if args.command == "db":
        return dbcli.run(args)
    if args.command == "registry" and args.registry_command in ("query", "sync"):
        return registrysynccli.run(args)
    if args.command == "registry":
        try:
            return registrycli.run(args, upgrade_hint(args.config))
        except registrycli.ExportError as exc:
            raise CliError(str(exc)) from None
    if args.command == "reload":
        return reloadcli.run(args)
    if args.command == "formats":
        return _formats(args)
    if args.command == "config":
        return configcheck.run(args)
    if args.command == "agreements":
        return agreementscli.run(args)
    if args.command == "token":
        if args.token_command == "revoke":  # noqa: S105 - a subcommand's name
            return revokecli.revoke_token(args)
        return auditcli.issue_token(args)
    if args.command == "evidence":
        return evidencecli.run(args)
    if args.command == "trust":
        return revokecli.revoke_certificate(args)
    if args.command in ("backup", "restore"):
        return backupcli.run(args)
    if args.command == "recognition":
        return asyncio.run(recognitioncli.run(args))
    if args.command == "demo":
        from hub.cli.demo import run_demo

        return asyncio.run(run_demo(trace=args.trace))
    raise CliError(f"unknown command {args.command}")


def _init(args: argparse.Namespace) -> int:
    pki = args.pki.resolve()
    for party in [args.party, *(p for p, _ in args.partner)]:
        if not (pki / party / "ca.pem").exists():
            raise CliError(
                f"{pki / party / 'ca.pem'}: missing; run `customs-hub pki init` with {party}"
            )
    args.out.mkdir(parents=True, exist_ok=True)
    target = args.out / "hub.toml"
    target.write_text(
        render_config(
            party=args.party,
            listen=args.listen,
            domestic_listen=args.domestic_listen,
            pki=pki,
            partners=dict(args.partner),
            store=args.store,
            audit_listen=args.audit_listen,
        )
    )
    load_config(target)  # what we wrote must load
    print(f"wrote {target}")
    return 0


async def _serve(config_path: Path) -> int:
    config = load_config(config_path)
    use_format(config.log_format)
    running = await start_hub(config)
    # What was loaded to start (modules, schemas, descriptors, certificates) lives as long as
    # the process: keep it out of the collector's sight, so a full collection looks at recent
    # objects only (measured: 60-120 ms pauses under load before, a few ms after)
    gc.freeze()
    auditors = f", auditors on {config.audit_listen}" if config.audit_listen else ""
    print(
        f"{config.party}: partners on {config.listen}, "
        f"domestic systems on {config.domestic_listen}{auditors}",
        flush=True,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    reloads = _Reloads(running)
    loop.add_signal_handler(signal.SIGHUP, reloads.request)
    ends = [asyncio.create_task(stop.wait()), asyncio.create_task(running.lock_lost.wait())]
    await asyncio.wait(ends, return_when=asyncio.FIRST_COMPLETED)
    for end in ends:
        end.cancel()
    # from here a SIGHUP is ignored (its default action would end the process mid-shutdown)
    reloads.stopping = True
    await reloads.finish()
    await running.stop()
    if running.lock_lost.is_set():
        print(
            f"customs-hub: error: hub-running: {config.party} stopped: another process took "
            "its store's lock while it ran",
            file=sys.stderr,
        )
        return EXIT_USAGE
    print(f"{config.party}: stopped", flush=True)
    return 0


class _Reloads:
    """SIGHUP: read the configuration again, one reload at a time; a signal that comes during
    one makes one more afterwards. A refused reload is logged (and in the trail) and the hub
    goes on with the configuration it has."""

    def __init__(self, running: RunningHub) -> None:
        self.running = running
        self.again = False
        self.stopping = False
        self.task: asyncio.Task[None] | None = None

    def request(self) -> None:
        if self.stopping:
            log.warning("reload ignored: the hub is stopping")
            return
        if self.task is not None and not self.task.done():
            self.again = True
            return
        self.task = asyncio.create_task(self._run(), name="reload")

    async def _run(self) -> None:
        while True:
            self.again = False
            try:
                change = await self.running.reload()
            except HubError:
                pass  # logged and recorded by the reload itself
            except Exception:
                log.exception("reload failed; the configuration in use stays")
            else:
                print(f"{self.running.config.party}: reloaded: {change.summary()}", flush=True)
            if not self.again:
                return

    async def finish(self) -> None:
        if self.task is not None:
            await asyncio.gather(self.task, return_exceptions=True)


def upgrade_hint(config: Path) -> str:
    """The command that brings the store of the hub configured by ``config`` up to date."""
    return f"customs-hub db upgrade --config {config}"


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CliError(f"{path}: cannot read: {exc.strerror}") from None


def _located(path: Path, error: TranslationError) -> CliError:
    """``file:line:column: reason: message [at element path]``."""
    where = (
        f"{path}:{error.line}" + (f":{error.column}" if error.column else "")
        if error.line
        else str(path)
    )
    suffix = f" [at {error.path}]" if error.path else ""
    return CliError(f"{where}: {error.reason}: {error.message}{suffix}")


def read_submission(path: Path, from_format: str | None = None) -> spb.SubmitRequest:
    """A document file as a SubmitRequest.

    Protobuf JSON is parsed here, so its errors name the file, line and field at once; any
    other format travels raw to the hub, which translates it and answers with the error.
    """
    data = _read(path)
    try:
        fmt = from_format or detect(data)
    except TranslationError as exc:
        raise _located(path, exc) from None
    if fmt != "proto-json":
        return spb.SubmitRequest(raw=spb.RawDocument(format=fmt, content=data))
    try:
        document = ProtoJson().decode(data, source=path.name)
    except TranslationError as exc:
        raise _located(path, exc) from None
    request = spb.SubmitRequest()
    for name in DOCUMENT_FIELDS:
        if request.DESCRIPTOR.fields_by_name[name].message_type is document.DESCRIPTOR:
            getattr(request, name).CopyFrom(document)
    return request


async def _send(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    request = read_submission(args.file, args.from_format)
    if args.to:
        del request.recipients[:]
        request.recipients.extend(args.to)
    if args.correlation_id:
        request.correlation_id = args.correlation_id
    async with grpc.aio.insecure_channel(config.domestic_listen) as channel:
        try:
            response = await sgrpc.DomesticStub(channel).Submit(request, timeout=30)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.UNAVAILABLE:
                raise CliError(
                    f"the hub is not reachable on {config.domestic_listen}; is "
                    f"`customs-hub serve --config {args.config}` running?"
                ) from None
            metadata = dict(exc.trailing_metadata() or ())
            reason = metadata.get(REASON_KEY, exc.code().name.lower())
            line = metadata.get(LINE_KEY)
            where = f"{args.file}:{line}" if line else str(args.file)
            raise CliError(
                f"{where}: hub refused the submission ({reason}): {exc.details()}"
            ) from None
    for queued in response.queued:
        print(f"queued {queued.message_id} for {queued.recipient}")
    return 0


def _translate(args: argparse.Namespace) -> int:
    """Every document of a file into another format: hub/cli/translate.py."""
    return translatecli.run(args)


async def _outbox(args: argparse.Namespace) -> int:
    action = args.outbox_action or "list"
    if args.config is None:
        raise CliError("outbox: --config FILE is required")
    config = load_config(args.config)
    if action != "list" and not (args.message_id or args.partner):
        raise CliError(f"outbox {action}: name --message-id ID or --partner PARTY")
    store = await Store.existing(config.store_url, upgrade_hint=upgrade_hint(args.config))
    try:
        if action == "list":
            now = utcnow()
            _print_outbox(await store.views.outbox_rows(now), now, as_json=args.json)
            return 0
        if action == "retry":
            hub = offline_hub(config, store)
            retried = await hub.submission.retry_dead_letters(args.message_id, args.partner)
            for old, new in retried.queued:
                print(f"requeued {old}" if old == new else f"re-signed {old} as {new}")
            kept = [f"kept {m} as a dead letter: {why}" for m, why in retried.kept]
            if not retried.queued:
                raise CliError(
                    "; ".join(kept) or "no matching dead letters (only dead letters can be retried)"
                )
            for line in kept:  # the others went
                print(f"customs-hub: {line}", file=sys.stderr)
            return 0
        return await _drop_or_reroute(args, config, store)
    finally:
        await store.close()


def offline_hub(config: HubConfig, store: Store) -> Hub:
    """The hub's procedures for a command run beside the serving hub: without telemetry, so
    it neither takes the serving hub's Prometheus port nor exports as if it were the hub."""
    return Hub(config, store, telemetry=Telemetry(TelemetryConfig(), config.party))


async def _drop_or_reroute(args: argparse.Namespace, config: HubConfig, store: Store) -> int:
    """`outbox drop` and `outbox reroute`: dead letters, and the queued messages of partners
    no longer in the config (hub/core/outbox.py ``operable``)."""
    if args.outbox_action == "reroute":
        partners = ", ".join(sorted(config.partners)) or "none"
        if args.to == args.partner:
            raise CliError(f"outbox reroute: --to {args.to} is the partner they are for already")
        if args.to not in config.partners:
            raise CliError(
                f"outbox reroute: --to {args.to} is not a partner in {args.config} "
                f"(partners: {partners})"
            )
    found = [
        m
        for message_id in (args.message_id or [None])
        for m in await store.outbox.in_outbox(message_id, args.partner)
    ]
    kept = [m for m in found if not operable(m.status, m.recipient in config.partners)]
    chosen = [m for m in found if m not in kept]
    if args.outbox_action == "reroute":
        done = []
        if chosen:  # named one by one: none of those left alone, none queued since
            hub = offline_hub(config, store)
            try:
                done = await hub.submission.reroute(
                    args.partner,
                    args.to,
                    [m.message_id for m in chosen],
                    queued=args.partner not in config.partners,
                )
            finally:
                await hub.close()
        for old, new in done:
            print(f"re-routed {old} to {args.to} as {new}")
    else:
        removed = [m for m in chosen if m.recipient not in config.partners]
        dropped = await store.outbox.drop(
            [m.message_id for m in chosen if m not in removed], "dropped by an operator"
        )
        dropped += await store.outbox.drop(
            [m.message_id for m in removed],
            f"dropped by an operator: {', '.join(sorted({m.recipient for m in removed}))} "
            "is no longer a partner",
            (QUEUED, DEAD),
        )
        done = [(message_id, message_id) for message_id in dropped]
        for message_id in dropped:
            print(f"dropped {message_id}")
    if kept:
        who = ", ".join(sorted({m.recipient for m in kept}))
        why = (
            f"{len(kept)} queued message(s) for {who} left alone: {who} is a partner in "
            f"{args.config}, and its queued messages are being delivered; only its dead "
            f"letters can be {'dropped' if args.outbox_action == 'drop' else 're-routed'} "
            "(remove the partner from the config first)"
        )
        if not done:
            raise CliError(why)
        print(f"customs-hub: {why}", file=sys.stderr)
    if not done:
        raise CliError(
            f"no matching dead letters, nor queued messages of a partner no longer in the "
            f"config, to {args.outbox_action.replace('reroute', 're-route')}"
        )
    return 0


def _status(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    try:
        found = statuscli.read_status(config)
    except statuscli.StoreUnreachable as exc:
        raise CliError(str(exc)) from None
    print(statuscli.as_json(found) if args.json else statuscli.as_text(found))
    return 0


def _print_outbox(rows: list[OutboxRow], now: datetime, *, as_json: bool) -> None:
    if as_json:
        for row in rows:
            print(
                json.dumps(
                    {
                        "message_id": row.message_id,
                        "partner": row.partner,
                        "type": row.body_type,
                        "state": row.state,
                        "attempts": row.attempts,
                        "reason": row.reason,
                        "created_at": rfc3339(row.created_at),
                        "next_attempt_at": rfc3339(row.next_attempt_at),
                        "last_error": row.last_error,
                    },
                    sort_keys=True,
                )
            )
        return
    counts = {
        state: sum(r.state == state for r in rows) for state in ("queued", "retrying", "dead")
    }
    print(", ".join(f"{n} {state}" for state, n in counts.items()))
    for row in rows:
        kind = row.body_type.rsplit(".", 1)[-1]
        wait = (row.next_attempt_at - now).total_seconds()
        when = f"next try in {math.ceil(wait)}s " if row.state != "dead" and wait > 0 else ""
        print(
            f"{row.state:<8} {row.partner:<4} {row.message_id}  {kind:<16} "
            f"attempts={row.attempts} {when}{row.reason}".rstrip()
        )


def _formats(args: argparse.Namespace) -> int:
    translators = registry()
    rows = [
        (
            entry.format_id,
            translators[entry.format_id].media_type,
            "/".join(sorted(translators[entry.format_id].directions)),
            entry.source,
            translators[entry.format_id].description,
        )
        for entry in discovered()
    ]
    if args.json:
        for name, media, directions, source, text in rows:
            print(
                json.dumps(
                    {
                        "format": name,
                        "media_type": media,
                        "directions": directions.split("/"),
                        "source": source,
                        "description": text,
                    },
                    sort_keys=True,
                )
            )
        return 0
    print(tables.render(("FORMAT", "MEDIA TYPE", "DIRECTIONS", "FROM", "DESCRIPTION"), rows))
    return 0


def _pki_trail_key(args: argparse.Namespace) -> int:
    try:
        verifier_path, verifier = new_trail_key(args.out, args.party)
    except (OSError, ValueError) as exc:
        raise CliError(f"pki trail-key: {exc}") from None
    print(f"trail key {args.out}, verifier key {verifier_path}: {verifier}")
    print(
        "to rotate: in hub.toml set [trail] previous_key to the key in use and key to this "
        "one, then `customs-hub reload`; auditors keep the first verifier key"
    )
    return 0


def _trail(args: argparse.Namespace) -> int:
    if args.trail_command == "export":
        return asyncio.run(_trail_export(args))
    if args.trail_command == "verify":
        return _trail_verify(args)
    if args.trail_command == "query":
        return asyncio.run(auditcli.query(args))
    if args.trail_command == "prove":
        return asyncio.run(auditcli.prove(args))
    raise CliError(f"unknown trail command {args.trail_command}")


async def _trail_export(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    store = await Store.existing(config.store_url, upgrade_hint=upgrade_hint(args.config))
    try:
        # every signing certificate known: configured, previous and learned (ADR 0010)
        certificates = await learning.trusted_certificates(config, store)
        done = await export_trail(store, args.out, config.origin, certificates)
    finally:
        await store.close()
    print(
        f"exported {done.entries} entries and {done.checkpoints} checkpoints "
        f"(latest at {done.latest_checkpoint}) and {done.messages} messages to {done.folder}"
    )
    return 0


def _trail_verify(args: argparse.Namespace) -> int:
    report = verify_folder(args.folder, read_key(args.key))
    # messages only against a trail that verified: its leaves are what they are checked with
    messages = verify_messages(args.folder, report) if args.messages and report.ok else None
    ok = report.ok and (messages is None or messages.ok)
    if args.json:
        found = {}
        if messages is not None:
            found["messages"] = {
                "ok": messages.ok,
                "checked": messages.checked,
                "uncovered": messages.uncovered,
                "not_kept": messages.not_kept,
                "problem_count": messages.problem_count,
                "problems": [asdict(p) for p in messages.problems],
                "anchors": messages.anchors,
            }
        print(
            json.dumps(
                found
                | {
                    "ok": report.ok,
                    "entries": report.entries,
                    "origin": report.origin,
                    "checkpoints": report.checkpoints,
                    "verified_size": report.verified_size,
                    "uncovered": report.uncovered,
                    "first_bad": report.first_bad,
                    "bad_range": list(report.bad_range) if report.bad_range else None,
                    "problem": report.problem,
                    "kinds": report.kinds,
                    # the trail keys followed from --key: each with the size of the
                    # hand-over after which it signs (0: the key given)
                    "trail_keys": [
                        {"key": k.verifier(), "after": after}
                        for k, after in zip(
                            report.chain.keys,
                            [0, *(h.size for h in report.chain.handovers)],
                            strict=True,
                        )
                    ]
                    if report.chain is not None
                    else [],
                },
                sort_keys=True,
            )
        )
    else:
        print(report.summary())
        if messages is not None:
            print(messages.summary())
    return 0 if ok else EXIT_BAD


def _keys(row: MessageRow) -> str:
    return " ".join(f"{k}={','.join(v)}" for k, v in sorted(row.business_keys.items()))


async def _messages(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    try:
        since = parse_since(args.since, utcnow()) if args.since else None
    except ValueError as exc:
        raise CliError(f"--since: {exc}") from None
    query = MessageQuery(
        partner=args.partner or "",
        body_type=args.body_type or "",
        since=since,
        status=args.status or "",
        direction=args.direction or "",
        limit=args.limit,
    )
    store = await Store.existing(config.store_url, upgrade_hint=upgrade_hint(args.config))
    try:
        page = await store.views.message_rows(query)
    finally:
        await store.close()
    rows = page.rows[::-1]  # the most recent last, as a log reads
    if args.json:
        for row in rows:
            print(
                json.dumps(
                    {
                        "direction": row.direction,
                        "message_id": row.message_id,
                        "type": row.body_type,
                        "partner": row.partner,
                        "status": row.status,
                        "receipt": row.receipt,
                        "business_keys": row.business_keys,
                        "at": rfc3339(row.at),
                    },
                    sort_keys=True,
                )
            )
    else:
        print(format_table(rows))
    if page.more:  # on stderr, so that --json stays one object per line
        print(
            f"customs-hub: more messages match; these are the {args.limit} most recent "
            "(raise --limit or narrow with --since, --partner, --type, --status, --direction)",
            file=sys.stderr,
        )
    return 0


def format_table(rows: Sequence[MessageRow]) -> str:
    header = ("DIR", "MESSAGE ID", "TYPE", "PARTNER", "STATUS", "RECEIPT", "BUSINESS KEYS")
    return tables.render(
        header,
        (
            (
                r.direction,
                r.message_id,
                r.body_type.rsplit(".", 1)[-1],
                r.partner,
                r.status,
                r.receipt,
                _keys(r),
            )
            for r in rows
        ),
    )


if __name__ == "__main__":
    sys.exit(main())  # main ends quietly when a reader closes the pipe
