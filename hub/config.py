"""The hub's configuration: one TOML file, read into typed, frozen objects.

Every limit lives in ``Limits`` with its default and the reason for the number. Relative paths
in the file are relative to the file's folder. Errors name the file and the key.

The file is checked in three steps: its shape by pydantic models (every table and key known,
each value of its type; an unknown key is refused with the closest known name), then the rules
between values (party ids, routes to configured partners, limits' ranges, the store URL and
its options), then every file it names exists and is readable. All problems found are
reported together, one per line. What the files hold (keys matching certificates) is checked
by hub/app/keys.py, the one module that reads them. This module opens no database and no
socket, and never shows a password in an error.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
import stat
import tomllib
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, create_model

from hub.core import agreements as agreements_core
from hub.core import codelists
from hub.core.agreements import BENEFITS, NO_AGREEMENTS, Agreements, Share
from hub.core.codelists import NO_CODE_LISTS, CodeLists
from hub.core.errors import ConfigError
from hub.core.limits import XmlLimits
from hub.core.messages import AEO_PROGRAMMES, SHORT_NAMES, body_class, full_body_type
from hub.core.revocation import STALE_CLOSED
from hub.core.routing import BY_COUNTRY
from hub.core.trust import PARTY_ID, PARTY_URI_PREFIX


@dataclass(frozen=True)
class Limits:
    # Five minutes: the skew Kerberos tolerates by default; NTP-synchronised hosts of two
    # administrations stay well inside it.
    clock_skew_seconds: float = 300.0
    # gRPC's default maximum receive size (4 MiB); a large declaration with 999 goods items is
    # a few hundred KB of protobuf.
    max_envelope_bytes: int = 4 * 1024 * 1024
    # Pre-arrival data must stay usable for a long sea voyage: a week by default.
    message_ttl_seconds: float = 7 * 24 * 3600.0
    # A receiver refuses lifetimes beyond 30 days, which bounds how long it must remember ids.
    max_lifetime_seconds: float = 30 * 24 * 3600.0
    # Envelopes per Exchange frame sent by the outbox worker; 64 keeps a frame of median
    # declarations under 1 MiB.
    delivery_batch: int = 64
    # What a receiver accepts in one Exchange frame: at most this many envelopes and bytes
    # (gRPC refuses larger frames before they are read into memory). 16 MiB holds 64 median
    # declarations many times over and 4 maximal envelopes.
    max_batch_envelopes: int = 256
    max_batch_bytes: int = 16 * 1024 * 1024
    # Concurrent calls on the partner port, all partners together; raised by the hub where
    # the partners' own allowances (below) need more.
    max_concurrent_rpcs: int = 128
    # What one partner may hold at once (hub/core/admission.py): Deliver calls, Exchange streams
    # (a hub uses one), and bytes of frames it sent that are not answered yet, per stream and
    # for all its streams: past those its streams are not read until it takes the answers.
    partner_calls: int = 16
    partner_streams: int = 4
    stream_buffer_bytes: int = 16 * 1024 * 1024
    partner_buffer_bytes: int = 32 * 1024 * 1024
    # An Exchange stream with nothing sent or in flight for this long is ended (status OK);
    # a sender opens a new one with its next message.
    stream_idle_seconds: float = 600.0
    # Frames awaiting their receipts on a partner's stream: enough to keep the link busy
    # while the partner commits earlier frames.
    delivery_window: int = 8
    # Retry schedule: the first retry after 1 s, then doubling, at most 5 minutes apart, each
    # wait shortened by up to half at random (jitter) so returning partners are not stampeded.
    retry_initial_seconds: float = 1.0
    retry_multiplier: float = 2.0
    retry_max_seconds: float = 300.0
    retry_jitter: float = 0.5
    # How long SIGTERM waits for receipts of frames in flight before abandoning them (they stay
    # queued and are resent; the partner answers with the receipt it gave the first time).
    shutdown_grace_seconds: float = 5.0
    # How long a partner call may take before it counts as failed.
    partner_timeout_seconds: float = 10.0
    # How often the outbox and subscriptions look at the store when nothing woke them (other
    # replicas may have written).
    poll_seconds: float = 1.0
    # Inbound messages sent to a domestic subscriber per store read.
    subscribe_batch: int = 100
    # Documents from domestic systems (adapters/xmlsafe.py has the reasons for these numbers).
    xml_max_bytes: int = 8 * 1024 * 1024
    xml_max_depth: int = 32
    xml_max_elements: int = 200_000
    # How often the revocation lists and the auditors' token deny-list are looked at (their
    # files' mtime and size; re-read only when one changed): a revocation takes effect within
    # this long, at the cost of a few stat calls.
    revocation_check_seconds: float = 5.0
    # A partner connection lives at most this long, then is told to go away (HTTP/2 GOAWAY)
    # and its calls get connection_drain_seconds to finish: the partner reconnects, and a
    # reload's new TLS certificate, trust anchors and CRLs then apply to every connection
    # within this bound, not only to new ones. An hour costs one handshake per partner-hour.
    connection_max_age_seconds: float = 3600.0
    connection_drain_seconds: float = 60.0
    # Revocation lists fetched from a distribution point (``crl_url``, ``crl_fetch``): fetched
    # at half the time left to the held list's nextUpdate, at least every this long (and at
    # most every revocation_check_seconds), and again this long after a failed fetch, capped
    # at a minute; each fetch given up after crl_fetch_timeout_seconds.
    crl_fetch_seconds: float = 3600.0
    crl_fetch_timeout_seconds: float = 10.0
    # A partner's TLS handshake before its channel is used (hub/rpc/channels.py preflight),
    # to see its server certificate, given up after this long.
    preflight_timeout_seconds: float = 5.0

    @property
    def xml(self) -> XmlLimits:
        return XmlLimits(self.xml_max_bytes, self.xml_max_depth, self.xml_max_elements)

    @property
    def clock_skew(self) -> timedelta:
        return timedelta(seconds=self.clock_skew_seconds)

    @property
    def message_ttl(self) -> timedelta:
        return timedelta(seconds=self.message_ttl_seconds)

    @property
    def max_lifetime(self) -> timedelta:
        return timedelta(seconds=self.max_lifetime_seconds)


CARRY_OVERLAP, CARRY_ALWAYS, CARRY_NEVER = "overlap", "always", "never"


@dataclass(frozen=True)
class PartnerConfig:
    party: str
    endpoint: str
    trust_anchor: Path
    signing_certs: tuple[Path, ...]
    countries: tuple[str, ...]
    # Formats this partner may send documents in over PartnerExchange (a RawDocument body,
    # translated on ingress); "*" is any registered format. Empty: protobuf bodies only, so
    # a partner's parser surface is opened by an operator's decision, not by default.
    raw_formats: tuple[str, ...] = ()
    # CRLs of this partner's trust anchor (hub/core/revocation.py), and what a stale one means:
    # "closed" refuses the partner's certificates, "open" accepts them with a log line.
    crls: tuple[Path, ...] = ()
    crl_stale: str = STALE_CLOSED
    # Where a newer CRL is fetched from, written over crls[0] (hub/app/crlfetch.py): an http(s)
    # URL, or "" with ``crl_fetch`` to take the CRL distribution point of its certificates.
    crl_url: str = ""
    crl_fetch: bool = False
    # crl_fetch only: the distribution point a certificate names may be on a loopback,
    # private or link-local address. Off, such a URL is refused: the partner writes its
    # certificates, and could otherwise make this hub fetch from inside its own network.
    crl_fetch_private: bool = False


FOLDER_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")
INBOX_SUBFOLDER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@dataclass(frozen=True)
class FolderConfig:
    """A drop folder a domestic system exchanges files through (hub/connectors/dropfolder.py)."""

    name: str  # [folders.<name>]; its subscriber and trail source are "folder:<name>"
    path: Path  # holds inbox/, processed/, rejected/ and outbox/
    # inbox/<subfolder> -> the format of the files dropped there; files directly in inbox/
    # have their format detected
    inbox_formats: Mapping[str, str] = field(default_factory=dict)
    # the format partners' messages are written in, to outbox/<format>/; "" writes none
    outbox_format: str = ""
    recipients: tuple[str, ...] = ()  # empty: the routing rules choose
    # A file is taken once it has not changed for this long: a system that writes in place
    # rather than renaming into inbox/ has finished by then.
    settle_seconds: float = 2.0


TELEMETRY_EXPORTERS = ("none", "console", "otlp")


@dataclass(frozen=True)
class TelemetryConfig:
    """hub.toml's [telemetry]: the exporter of traces and metrics ("none", the default: no
    spans are made and nothing is exported; "console": written to standard output; "otlp":
    sent to ``otlp_endpoint``), and the port of a Prometheus scrape endpoint (metrics only;
    None: none), which works with any exporter."""

    exporter: str = "none"
    otlp_endpoint: str = ""
    prometheus_port: int | None = None
    prometheus_address: str = "127.0.0.1"
    # the share of our own traces kept (a partner's sampled flag decides nothing here)
    sample_ratio: float = 1.0

    @property
    def tracing(self) -> bool:
        return self.exporter != "none"

    @property
    def metering(self) -> bool:
        return self.exporter != "none" or self.prometheus_port is not None


@dataclass(frozen=True)
class HubConfig:
    path: Path
    party: str
    listen: str
    domestic_listen: str
    tls_cert: Path
    tls_key: Path
    trust_anchor: Path  # this administration's own CA
    signing_cert: Path
    signing_key: Path
    trail_key: Path  # Ed25519 key that signs the trail's checkpoints
    store_url: str = field(repr=False)  # may hold a password: shown in no repr
    partners: Mapping[str, PartnerConfig]
    routes: Mapping[str, Sequence[str] | str]
    countries: tuple[str, ...] = ()
    limits: Limits = field(default_factory=Limits)
    folders: Mapping[str, FolderConfig] = field(default_factory=dict)
    trail_origin: str = ""  # the checkpoints' origin line; "customs-hub/<party>" by default
    # during a rotation of the trail key: the key that signed the newest checkpoint, which
    # hands over to trail_key (hub/trail/handover.py); None otherwise
    trail_previous_key: Path | None = None
    checkpoint_entries: int = 1000  # sign a checkpoint after this many new entries ...
    checkpoint_seconds: float = 10.0  # ... or this long after the last one, if it grew
    # Auditors: the Audit service's port (TLS with the hub's certificate; empty: none), and
    # the Ed25519 key that signs and verifies their tokens, with the tokens' iss and aud
    audit_listen: str = ""
    audit_key: Path | None = None
    # keys the audit key replaced, whose tokens are still accepted until they expire (public or
    # private Ed25519 PEM; docs/rotation.md)
    previous_audit_keys: tuple[Path, ...] = ()
    token_issuer: str = ""
    token_audience: str = ""
    # Revocation: CRLs of this administration's own CA, what a stale one means, and the
    # auditors' token deny-list (one jti per line)
    crls: tuple[Path, ...] = ()
    crl_stale: str = STALE_CLOSED
    crl_url: str = ""  # as PartnerConfig's: this administration's own CA's list, fetched
    crl_fetch: bool = False
    crl_fetch_private: bool = False
    revoked_tokens: Path | None = None
    # Rotation of the message-signing key (docs/adr/0010-key-rotation.md): the signing
    # certificates used before the current one, kept while what they signed must verify (our
    # queued envelopes, our receipts, the trail export's history); and when the current
    # certificate travels with each signature, so partners learn it without an edit:
    # "overlap" (while previous_certs is not empty), "always" or "never".
    signing_previous: tuple[Path, ...] = ()
    carry_certificate: str = CARRY_OVERLAP
    # Mutual recognition agreements and their sharing policy (hub/core/agreements.py; none:
    # no policy applies, routes alone decide what goes where, and nothing is recognised)
    agreements: Agreements = NO_AGREEMENTS
    # Partners' code lists (hub/core/codelists.py, docs/formats/code-lists.md): [code_lists.*]
    # tables and the list files they name, read whole here; the shipped lists are added by
    # the translators (adapters/edifact/codelists.py)
    code_lists: CodeLists = NO_CODE_LISTS
    log_format: str = "text"  # [log] format: "text" lines or one JSON object per line
    # [telemetry]: where traces and metrics go (hub/app/telemetry.py, docs/telemetry.md)
    telemetry: TelemetryConfig = field(default_factory=TelemetryConfig)

    @property
    def issuer(self) -> str:
        return self.token_issuer or f"customs-hub/{self.party}"

    @property
    def audience(self) -> str:
        return self.token_audience or f"customs-hub/{self.party}"

    @property
    def origin(self) -> str:
        return self.trail_origin or f"customs-hub/{self.party}"

    @property
    def store(self) -> StoreSettings:
        """What the store connects with: ``store_url`` read into its parts and options."""
        return store_settings(self.store_url)


# --- The file's shape -----------------------------------------------------------------------
# Each TOML table is a model that forbids keys it does not know; strict, so that "300" is not
# taken for 300 nor true for 1. The models only say what the file may hold: load_config builds
# the dataclasses above from them, and the rest of the hub sees only those.

Text = Annotated[str, StringConstraints(min_length=1)]


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class _Server(_Table):
    listen: Text
    domestic_listen: Text


StalePolicy = Literal["closed", "open"]


class _Tls(_Table):
    cert: Text
    key: Text
    trust_anchor: Text
    crls: list[Text] = []
    crl_stale: StalePolicy = "closed"
    crl_url: Text | None = None
    crl_fetch: bool = False
    crl_fetch_private: bool = False


class _Signing(_Table):
    cert: Text
    key: Text
    previous_certs: list[Text] = []
    carry_certificate: Literal["overlap", "always", "never"] = "overlap"


class _Trail(_Table):
    key: Text
    previous_key: Text | None = None
    origin: str = ""
    checkpoint_entries: int = Field(1000, gt=0)
    checkpoint_seconds: float = Field(10.0, gt=0)


class _Store(_Table):
    url: Text


class _Log(_Table):
    format: Text = "text"


class _Telemetry(_Table):
    exporter: Text = "none"
    otlp_endpoint: Text | None = None
    prometheus_port: int | None = Field(default=None, ge=1, le=65535)
    prometheus_address: Text = "127.0.0.1"
    sample_ratio: float = Field(default=1.0, ge=0, le=1)


class _Audit(_Table):
    listen: Text | None = None
    token_key: Text | None = None
    previous_token_keys: list[Text] = []
    issuer: Text | None = None
    audience: Text | None = None
    revoked_tokens: Text | None = None


class _Partner(_Table):
    endpoint: Text
    identity: Text | None = None
    trust_anchor: Text
    signing_certs: list[Text]
    countries: list[Text] | None = None
    raw_formats: list[Text] = []
    crls: list[Text] = []
    crl_stale: StalePolicy = "closed"
    crl_url: Text | None = None
    crl_fetch: bool = False
    crl_fetch_private: bool = False


class _Folder(_Table):
    path: Text
    inbox_formats: dict[str, Text] = {}
    outbox_format: str = ""
    recipients: list[Text] = []
    settle_seconds: float = Field(2.0, ge=0)


AGREEMENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
# A date as hub.toml writes it: a TOML date (2025-01-01) or a string "2025-01-01" (checked by
# _date, so that either form's mistake gets one line)
DATE_TEXT = re.compile(r"\d{4}-\d{2}-\d{2}")


class _Share(_Table):
    send: bool = False
    receive: bool = False
    fields: list[Text] = []


class _Agreement(_Table):
    partners: list[Text]
    status: Literal["in-force", "suspended"] = "in-force"
    effective_from: Any
    effective_until: Any = ""
    recognises: dict[str, Text] = {}
    benefits: list[Text] = []
    share: dict[str, _Share] = {}


# [limits]: one optional number per field of Limits, with Limits' own type (an int limit is
# a whole number; a float one takes either)
_Limits: type[_Table] = create_model(  # type: ignore[call-overload]
    "_Limits",
    __base__=_Table,
    **{f.name: (int | None if f.type == "int" else float | None, None) for f in fields(Limits)},
)


class _HubFile(_Table):
    party: Text
    countries: list[Text] | None = None
    server: _Server
    tls: _Tls
    signing: _Signing
    trail: _Trail
    store: _Store
    audit: _Audit = _Audit()
    log: _Log = _Log()
    telemetry: _Telemetry = _Telemetry()
    limits: _Limits = _Limits()  # type: ignore[valid-type]
    partners: dict[str, _Partner] = {}
    folders: dict[str, _Folder] = {}
    routes: dict[str, Any] = {}
    agreements: dict[str, _Agreement] = {}
    # each a list's table (hub/core/codelists.py checks its keys) or {file = "path.toml"}
    code_lists: dict[str, dict[str, Any]] = {}


# What a value that pydantic refused was expected to be, by its error type.
_EXPECTED = {
    "string_type": "a string",
    "string_too_short": "a non-empty string",
    "int_type": "a whole number",
    "float_type": "a number",
    "list_type": "a list",
    "dict_type": "a table",
    "model_type": "a table",
    "model_attributes_type": "a table",
}


def _dotted(loc: Sequence[str | int]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def _known_keys(loc: Sequence[str | int]) -> list[str]:
    """The keys the table at ``loc`` may hold (empty where any key is allowed)."""
    kind: Any = _HubFile
    for part in loc:
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            info = kind.model_fields.get(str(part))
            if info is None:
                return []
            kind = info.annotation
        elif get_origin(kind) is dict:
            kind = get_args(kind)[1]
        else:
            return []
    if isinstance(kind, type) and issubclass(kind, BaseModel):
        return list(kind.model_fields)
    return []


def _suggestion(word: str, known: Sequence[str], table: bool = False) -> str:
    close = difflib.get_close_matches(word, known, n=1)
    if close:
        return f"did you mean [{close[0]}]?" if table else f"did you mean {close[0]}?"
    return "known: " + ", ".join(sorted(known))


def _schema_problem(error: Any) -> str:
    loc = tuple(error["loc"])
    key, found = _dotted(loc), error.get("input")
    if error["type"] == "extra_forbidden":
        known = _known_keys(loc[:-1])
        name = str(loc[-1])
        if len(loc) == 1 and isinstance(found, dict):
            return f"[{name}] is not a known table; {_suggestion(name, known, table=True)}"
        return f"{key}: unknown key; {_suggestion(name, known)}"
    if error["type"] == "missing":
        return f"{key} is missing"
    expected = _EXPECTED.get(error["type"])
    if expected is None:
        expected = str(error["msg"]).removeprefix("Input should be ")
    return f"{key} must be {expected}; found {found!r}"


class _Problems:
    """What is wrong with one file: each problem a line naming the file and the key."""

    def __init__(self, path: Path) -> None:
        self.path, self.lines = path, list[str]()

    def add(self, text: str) -> None:
        self.lines.append(f"{self.path}: {text}")

    def fail(self, key: str, expected: str, found: object) -> None:
        self.add(f"{key} must be {expected}; found {found!r}")

    def file(self, key: str, path: Path) -> None:
        """``path`` (named by ``key``) must be a readable file."""
        if not path.exists():
            self.add(f"{key}: {path} does not exist")
        elif not path.is_file():
            self.add(f"{key}: {path} is not a file")
        elif not os.access(path, os.R_OK):
            self.add(f"{key}: {path} is not readable")

    def raise_any(self) -> None:
        if self.lines:
            raise ConfigError("\n".join(self.lines), reason="config-invalid")


def load_config(path: Path | str) -> HubConfig:
    """Read and check ``path``; a ConfigError lists every problem found, one per line."""
    path = Path(path).resolve()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file", reason="config-missing") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}", reason="config-missing") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}", reason="config-invalid") from None
    problems = _Problems(path)
    # 1. the shape: known tables and keys, each value of its type
    try:
        shape = _HubFile.model_validate(raw)
    except ValidationError as exc:
        for error in exc.errors():
            problems.add(_schema_problem(error))
        problems.raise_any()
        raise  # unreachable: a ValidationError has at least one error
    # 2. the rules between values
    config = _build(path, shape, problems)
    problems.raise_any()
    # 3. the files it names
    _check_files(config, problems)
    problems.raise_any()
    return config


def _resolve(base: Path, text: str) -> Path:
    p = Path(text)
    return p if p.is_absolute() else (base / p).resolve()


def _build(path: Path, shape: _HubFile, problems: _Problems) -> HubConfig:
    base = path.parent
    if not PARTY_ID.fullmatch(shape.party):
        problems.fail("party", "a party id such as 'CN'", shape.party)
    partners: dict[str, PartnerConfig] = {}
    for name, p in shape.partners.items():
        if not PARTY_ID.fullmatch(name):
            problems.fail(f"partners.{name}", "a party id such as 'CN'", name)
        if p.identity is not None and p.identity != PARTY_URI_PREFIX + name:
            problems.fail(f"partners.{name}.identity", f"{PARTY_URI_PREFIX}{name}", p.identity)
        partners[name] = PartnerConfig(
            party=name,
            endpoint=p.endpoint,
            trust_anchor=_resolve(base, p.trust_anchor),
            signing_certs=tuple(_resolve(base, c) for c in p.signing_certs),
            countries=tuple(p.countries if p.countries is not None else [name]),
            raw_formats=tuple(p.raw_formats),
            crls=tuple(_resolve(base, c) for c in p.crls),
            crl_stale=p.crl_stale,
            crl_url=p.crl_url or "",
            crl_fetch=p.crl_fetch,
            crl_fetch_private=p.crl_fetch_private,
        )
        _check_crl_fetch(f"partners.{name}", p, problems)
    if shape.party in partners:
        problems.add(f"partners.{shape.party} is this hub itself")
    tls = shape.tls
    _check_crl_fetch("tls", tls, problems)
    routes = _routes(shape.routes, partners, problems)
    audit = shape.audit
    if audit.listen and audit.token_key is None:
        problems.fail("audit.token_key", "the Ed25519 key that signs auditors' tokens", None)
    limits: BaseModel = shape.limits
    limit_values = {k: v for k, v in limits.model_dump().items() if v is not None}
    for key, value in limit_values.items():
        if key == "retry_jitter" and not 0 <= value <= 1:
            problems.fail(f"limits.{key}", "a fraction from 0 to 1", value)
        elif key == "retry_multiplier" and value < 1:
            problems.fail(f"limits.{key}", "a number of at least 1", value)
        elif key != "retry_jitter" and value <= 0:
            problems.fail(f"limits.{key}", "a positive number", value)
    if shape.log.format not in ("text", "json"):
        problems.fail("log.format", '"text" or "json"', shape.log.format)
    _check_telemetry(shape.telemetry, problems)
    if shape.trail.origin and not shape.trail.origin.isprintable():
        problems.fail("trail.origin", "one printable line", shape.trail.origin)
    try:
        url = store_url(shape.store.url, base)
    except ConfigError as exc:
        problems.add(exc.message)
        url = ""
    return HubConfig(
        path=path,
        party=shape.party,
        listen=shape.server.listen,
        domestic_listen=shape.server.domestic_listen,
        tls_cert=_resolve(base, shape.tls.cert),
        tls_key=_resolve(base, shape.tls.key),
        trust_anchor=_resolve(base, shape.tls.trust_anchor),
        signing_cert=_resolve(base, shape.signing.cert),
        signing_key=_resolve(base, shape.signing.key),
        signing_previous=tuple(_resolve(base, c) for c in shape.signing.previous_certs),
        carry_certificate=shape.signing.carry_certificate,
        trail_key=_resolve(base, shape.trail.key),
        trail_origin=shape.trail.origin,
        trail_previous_key=(
            _resolve(base, shape.trail.previous_key) if shape.trail.previous_key else None
        ),
        checkpoint_entries=shape.trail.checkpoint_entries,
        checkpoint_seconds=shape.trail.checkpoint_seconds,
        audit_listen=audit.listen or "",
        audit_key=_resolve(base, audit.token_key) if audit.token_key else None,
        previous_audit_keys=tuple(_resolve(base, k) for k in audit.previous_token_keys),
        token_issuer=audit.issuer or "",
        token_audience=audit.audience or "",
        crls=tuple(_resolve(base, c) for c in shape.tls.crls),
        crl_stale=shape.tls.crl_stale,
        crl_url=shape.tls.crl_url or "",
        crl_fetch=shape.tls.crl_fetch,
        crl_fetch_private=shape.tls.crl_fetch_private,
        revoked_tokens=_resolve(base, audit.revoked_tokens) if audit.revoked_tokens else None,
        store_url=url,
        partners=partners,
        routes=routes,
        countries=tuple(shape.countries if shape.countries is not None else [shape.party]),
        limits=Limits(**limit_values) if not problems.lines else Limits(),
        folders=_folders(base, shape.folders, partners, problems),
        agreements=_agreements(shape.agreements, partners, problems),
        code_lists=_code_lists(base, shape.code_lists, problems),
        log_format=shape.log.format,
        telemetry=TelemetryConfig(
            exporter=shape.telemetry.exporter,
            otlp_endpoint=shape.telemetry.otlp_endpoint or "",
            prometheus_port=shape.telemetry.prometheus_port,
            prometheus_address=shape.telemetry.prometheus_address,
            sample_ratio=shape.telemetry.sample_ratio,
        ),
    )


def _check_telemetry(table: _Telemetry, problems: _Problems) -> None:
    if table.exporter not in TELEMETRY_EXPORTERS:
        expected = " or ".join(f'"{e}"' for e in TELEMETRY_EXPORTERS)
        problems.fail("telemetry.exporter", expected, table.exporter)
    if table.exporter == "otlp":
        parts = urllib.parse.urlsplit(table.otlp_endpoint or "")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            problems.fail(
                "telemetry.otlp_endpoint",
                'the collector\'s gRPC address as a URL, e.g. "http://127.0.0.1:4317"',
                table.otlp_endpoint,
            )
    elif table.otlp_endpoint is not None:
        problems.add('telemetry.otlp_endpoint is used only with exporter = "otlp"')
    try:
        ipaddress.ip_address(table.prometheus_address)
    except ValueError:
        problems.fail(
            "telemetry.prometheus_address", "an IP address to listen on", table.prometheus_address
        )


def _check_crl_fetch(key: str, table: _Tls | _Partner, problems: _Problems) -> None:
    """A fetched list needs a file to be written to (the first of ``crls``, so that a restart
    starts from it) and a plain http(s) URL: nothing else is fetched."""
    url, fetch = table.crl_url, table.crl_fetch
    if url is not None and fetch:
        problems.add(f"{key}: crl_url and crl_fetch = true exclude each other; set one")
    if (url is not None or fetch) and not table.crls:
        problems.add(
            f"{key}: crl_url or crl_fetch needs a file in {key}.crls to write the fetched list to"
        )
    if table.crl_fetch_private and not fetch:
        problems.add(
            f"{key}: crl_fetch_private = true goes with crl_fetch = true (a crl_url is fetched "
            "wherever it points)"
        )
    if url is not None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            problems.fail(f"{key}.crl_url", "an http:// or https:// URL with a host", url)


def _routes(
    table: Mapping[str, Any], partners: Mapping[str, PartnerConfig], problems: _Problems
) -> dict[str, Sequence[str] | str]:
    routes: dict[str, Sequence[str] | str] = {}
    for key, value in table.items():
        body_type = full_body_type(key)
        if body_type is None:
            problems.fail(f"routes.{key}", "a known message type", key)
            continue
        if value == BY_COUNTRY:
            routes[body_type] = BY_COUNTRY
            continue
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            problems.fail(f"routes.{key}", f'a list of partners or "{BY_COUNTRY}"', value)
            continue
        for t in value:
            if t not in partners:
                problems.fail(f"routes.{key}", "a list of configured partners", t)
        routes[body_type] = tuple(value)
    return routes


def _date(key: str, value: object, problems: _Problems) -> date | None:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and DATE_TEXT.fullmatch(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    problems.fail(key, "a date, yyyy-mm-dd", value)
    return None


def _agreements(
    table: Mapping[str, _Agreement],
    partners: Mapping[str, PartnerConfig],
    problems: _Problems,
) -> Agreements:
    """[agreements.<id>]: each checked on its own, then together (hub/core/agreements.py
    ``conflicts``: no two may recognise the same programme of a partner, or cover the same
    message type with it in the same direction, on the same day)."""
    built: list[agreements_core.Agreement] = []
    programmes = sorted(AEO_PROGRAMMES.values())
    for name, a in table.items():
        key = f"agreements.{name}"
        before = len(problems.lines)
        if not AGREEMENT_ID.fullmatch(name):
            problems.fail(key, "an agreement id of letters, digits, '.', '_' and '-'", name)
        if not a.partners:
            problems.fail(f"{key}.partners", "a list of one or more configured partners", [])
        for p in a.partners:
            if p not in partners:
                problems.fail(f"{key}.partners", "a list of configured partners", p)
        if len(set(a.partners)) != len(a.partners):
            problems.fail(f"{key}.partners", "a list naming each partner once", a.partners)
        start = _date(f"{key}.effective_from", a.effective_from, problems)
        end = (
            _date(f"{key}.effective_until", a.effective_until, problems)
            if a.effective_until
            else None
        )
        if start is not None and end is not None and end < start:
            problems.fail(
                f"{key}.effective_until", f"a date on or after effective_from ({start})", str(end)
            )
        for theirs, ours in a.recognises.items():
            if theirs not in programmes:
                problems.add(
                    f"{key}.recognises: {theirs!r} is not an AEO programme; "
                    f"{_suggestion(theirs, programmes)}"
                )
            if ours not in programmes:
                problems.add(
                    f"{key}.recognises.{theirs}: {ours!r} is not an AEO programme; "
                    f"{_suggestion(ours, programmes)}"
                )
        for code in a.benefits:
            if code not in BENEFITS:
                problems.add(
                    f"{key}.benefits: {code!r} is not a benefit code; "
                    f"{_suggestion(code, list(BENEFITS))}"
                )
        if len(set(a.benefits)) != len(a.benefits):
            problems.fail(f"{key}.benefits", "a list naming each benefit once", a.benefits)
        shares: dict[str, Share] = {}
        for short, s in a.share.items():
            body_type = full_body_type(short)
            cls = body_class(body_type) if body_type else None
            if body_type is None or cls is None:
                problems.add(
                    f"{key}.share.{short}: not a known message type; "
                    f"{_suggestion(short, sorted(SHORT_NAMES), table=True)}"
                )
                continue
            if body_type in shares:
                problems.add(f"{key}.share.{short}: {body_type} has a share table already")
            for problem in agreements_core.field_problems(cls, s.fields):
                problems.add(f"{key}.share.{short}.fields: {problem}")
            for problem in agreements_core.identity_problems(body_type, s.fields):
                problems.add(f"{key}.share.{short}.fields {problem}")
            if len(set(s.fields)) != len(s.fields):
                problems.fail(
                    f"{key}.share.{short}.fields", "a list naming each field once", s.fields
                )
            shares[body_type] = Share(body_type, s.send, s.receive, tuple(s.fields))
        if len(problems.lines) > before or start is None:
            continue
        built.append(
            agreements_core.agreement(
                name,
                a.partners,
                status=a.status,
                effective_from=start,
                effective_until=end,
                recognises=a.recognises,
                benefits=a.benefits,
                shares=shares.values(),
            )
        )
    for name, problem in agreements_core.conflicts(built):
        problems.add(f"agreements.{name}: {problem}")
    return agreements_core.agreements(built)


def _code_lists(
    base: Path, table: Mapping[str, Mapping[str, Any]], problems: _Problems
) -> CodeLists:
    """[code_lists.<name>]: a list's table, or ``file`` naming a TOML file that holds one (read
    here, once: not through a symbolic link, at most MAX_LIST_BYTES). Two lists for the same
    agency, element and qualifier are refused; so is one that would replace a shipped list,
    when the translators are made (adapters/edifact/codelists.py)."""
    built: list[codelists.CodeList] = []
    for name, raw in table.items():
        key = f"code_lists.{name}"
        body: Mapping[str, Any] = raw
        where = key
        if "file" in raw:
            if set(raw) != {"file"}:
                others = ", ".join(sorted(set(raw) - {"file"}))
                problems.add(f"{key}: file names the whole list; remove {others} or file")
                continue
            path = raw["file"]
            if not isinstance(path, str) or not path:
                problems.fail(f"{key}.file", "the path of a code list file", path)
                continue
            # not resolved: a link at the file's own name must be seen, and refused
            resolved = Path(path) if Path(path).is_absolute() else base / path
            text = _list_file(f"{key}.file", resolved, problems)
            if text is None:
                continue
            try:
                body = tomllib.loads(text)
            except tomllib.TOMLDecodeError as exc:
                problems.add(f"{key}.file: {resolved}: not valid TOML: {exc}")
                continue
            where = f"{key}.file: {resolved}:"
        found: list[str] = []
        code_list = codelists.parse(name, body, found, source=f"{key}")
        for line in found:
            if where != key:
                problems.add(f"{where} {line}")
            else:
                problems.add(f"{key}: {line}" if line.startswith("'") else f"{key}.{line}")
        if code_list is not None:
            built.append(code_list)
    governed: dict[tuple[str, str, str], str] = {}
    for code_list in built:
        other = governed.setdefault(code_list.key, code_list.name)
        if other != code_list.name:
            problems.add(
                f"code_lists.{code_list.name}: governs the codes of {code_list.where()} that "
                f"code_lists.{other} does; one list per agency, element and qualifier"
            )
    return CodeLists(tuple(built))


def _list_file(key: str, path: Path, problems: _Problems) -> str | None:
    """The text of a code list file, opened without following a link at its name, and only if
    it is a regular file of at most MAX_LIST_BYTES."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        descriptor = os.open(path, flags)
    except OSError as exc:
        what = "is a symbolic link" if path.is_symlink() else f"cannot be read ({exc.strerror})"
        problems.add(f"{key}: {path} {what}")
        return None
    with os.fdopen(descriptor, "rb") as file:
        if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
            problems.add(f"{key}: {path} is not a file")
            return None
        data = file.read(codelists.MAX_LIST_BYTES + 1)
    if len(data) > codelists.MAX_LIST_BYTES:
        problems.add(f"{key}: {path} is larger than {codelists.MAX_LIST_BYTES} bytes")
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        problems.add(f"{key}: {path} is not UTF-8 text")
        return None


def _folders(
    base: Path,
    table: Mapping[str, _Folder],
    partners: Mapping[str, PartnerConfig],
    problems: _Problems,
) -> dict[str, FolderConfig]:
    folders: dict[str, FolderConfig] = {}
    paths: dict[Path, str] = {}
    for name, f in table.items():
        key = f"folders.{name}"
        if not FOLDER_NAME.fullmatch(name):
            problems.fail(key, "a folder name of lower-case letters, digits and '-'", name)
        for sub in f.inbox_formats:
            if not INBOX_SUBFOLDER.fullmatch(sub):
                problems.fail(f"{key}.inbox_formats.{sub}", "a plain subfolder name of inbox/", sub)
        for r in f.recipients:
            if r not in partners:
                problems.fail(f"{key}.recipients", "a list of configured partners", r)
        # The folder itself need not exist: the hub makes it at start (DropFolder.prepare).
        path = _resolve(base, f.path)
        if path in paths:
            problems.fail(
                f"{key}.path", f"a path no other folder uses (folders.{paths[path]} does)", path
            )
        paths[path] = name
        folders[name] = FolderConfig(
            name=name,
            path=path,
            inbox_formats=dict(f.inbox_formats),
            outbox_format=f.outbox_format,
            recipients=tuple(f.recipients),
            settle_seconds=float(f.settle_seconds),
        )
    return folders


def _check_files(config: HubConfig, problems: _Problems) -> None:
    """Every key, certificate and option file the config names exists and is readable; the
    SQLite database's folder exists (the database itself is made at the first start)."""
    named: list[tuple[str, Path]] = [
        ("tls.cert", config.tls_cert),
        ("tls.key", config.tls_key),
        ("tls.trust_anchor", config.trust_anchor),
        ("signing.cert", config.signing_cert),
        ("signing.key", config.signing_key),
        ("trail.key", config.trail_key),
    ]
    if config.trail_previous_key is not None:
        named.append(("trail.previous_key", config.trail_previous_key))
    if config.audit_key is not None:
        named.append(("audit.token_key", config.audit_key))
    named += [
        (f"audit.previous_token_keys[{i}]", k) for i, k in enumerate(config.previous_audit_keys)
    ]
    if config.revoked_tokens is not None:
        named.append(("audit.revoked_tokens", config.revoked_tokens))
    named += [(f"tls.crls[{i}]", c) for i, c in enumerate(config.crls)]
    named += [(f"signing.previous_certs[{i}]", c) for i, c in enumerate(config.signing_previous)]
    for p in config.partners.values():
        named.append((f"partners.{p.party}.trust_anchor", p.trust_anchor))
        named += [
            (f"partners.{p.party}.signing_certs[{i}]", c) for i, c in enumerate(p.signing_certs)
        ]
        named += [(f"partners.{p.party}.crls[{i}]", c) for i, c in enumerate(p.crls)]
    store = config.store
    for option in ("sslrootcert", "sslcert", "sslkey", "passfile"):
        value = getattr(store, option)
        if value and value != "system":
            named.append((f"store.url: {option}", Path(value)))
    for key, path in named:
        problems.file(key, path)
    if store.is_sqlite and not Path(store.database).parent.is_dir():
        problems.add(f"store.url: folder {Path(store.database).parent} does not exist")


# --- The store URL ----------------------------------------------------------------------------

# libpq's sslmode values (PostgreSQL's "SSL Support" chapter), weakest first.
SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
# Options a postgresql:// URL may carry, as libpq names them, and the pool's two
STORE_OPTIONS = (
    "sslmode",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "passfile",
    "connect_timeout",
    "pool_size",
    "max_overflow",
)
PATH_OPTIONS = ("sslrootcert", "sslcert", "sslkey", "passfile")


@dataclass(frozen=True)
class StoreSettings:
    """What the store connects with, read from a store URL (hub/store/engine.py makes the
    engine from it). ``url`` is the SQLAlchemy URL without the options, password included
    when the operator wrote one; ``shown`` is what may be printed."""

    url: str = field(repr=False)  # may hold the password: shown in no repr
    host: str = ""
    port: int = 0
    database: str = ""  # for SQLite, the file's path
    sslmode: str = ""  # "": the driver's default, which is libpq's ("prefer")
    sslrootcert: str = ""  # a file, or "system": the system's trusted CAs
    sslcert: str = ""
    sslkey: str = ""
    passfile: str = ""  # libpq's password file (host:port:database:user:password lines)
    connect_timeout: float | None = None
    pool_size: int | None = None
    max_overflow: int | None = None
    shown: str = ""

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")

    @property
    def where(self) -> str:
        """The database as an error names it: never with a password."""
        if self.is_sqlite:
            return f"SQLite database {self.database}"
        return f'PostgreSQL at {self.host}:{self.port} database "{self.database}"'


def _masked(parts: urllib.parse.SplitResult) -> str:
    netloc = parts.netloc
    if parts.password is not None:
        netloc = f"{parts.username or ''}:***@{netloc.rpartition('@')[2]}"
    scheme = parts.scheme.split("+", 1)[0]  # as the operator writes it: postgresql://
    return urllib.parse.urlunsplit((scheme, netloc, parts.path, "", ""))


def store_settings(url: str) -> StoreSettings:
    """Parse a SQLAlchemy store URL (``sqlite+aiosqlite:///path`` or
    ``postgresql+asyncpg://user[:password]@host[:port]/db?option=value&...``). A ConfigError
    names the option that is wrong, never the password."""
    if url.startswith("sqlite+aiosqlite:///"):
        db, _, query = url[len("sqlite+aiosqlite:///") :].partition("?")
        if query:
            raise ConfigError(
                f"store.url: a SQLite URL takes no options; found ?{query}", reason="config-invalid"
            )
        return StoreSettings(url=url, database=db, shown=f"sqlite:///{db}")
    if not url.startswith("postgresql+asyncpg://"):
        scheme = url.split(":", 1)[0]
        raise ConfigError(
            f"store.url must start with sqlite:/// or postgresql://; found {scheme}:...",
            reason="config-invalid",
        )
    parts = urllib.parse.urlsplit(url)
    shown = _masked(parts)
    try:
        port = parts.port or 5432
    except ValueError:
        raise ConfigError(
            f"store.url: the port of {shown} is not a number", reason="config-invalid"
        ) from None
    options: dict[str, str] = {}
    for name, value in urllib.parse.parse_qsl(parts.query, keep_blank_values=True):
        if name not in STORE_OPTIONS:
            raise ConfigError(
                f"store.url: unknown option {name!r}; {_suggestion(name, STORE_OPTIONS)}",
                reason="config-invalid",
            )
        if name in options:
            raise ConfigError(f"store.url: option {name} given twice", reason="config-invalid")
        options[name] = value
    settings = StoreSettings(
        url=urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")),
        host=parts.hostname or "localhost",
        port=port,
        database=parts.path.lstrip("/") or (parts.username or ""),
        sslmode=options.get("sslmode", ""),
        sslrootcert=options.get("sslrootcert", ""),
        sslcert=options.get("sslcert", ""),
        sslkey=options.get("sslkey", ""),
        passfile=options.get("passfile", ""),
        connect_timeout=_number(options, "connect_timeout", float, 0),
        pool_size=_number(options, "pool_size", int, 1),
        max_overflow=_number(options, "max_overflow", int, 0),
        shown=shown,
    )
    _check_tls_options(settings)
    return settings


def _number(options: Mapping[str, str], name: str, kind: type[Any], least: int) -> Any:
    if name not in options:
        return None
    try:
        value = kind(options[name])
    except ValueError:
        value = None
    if value is None or value < least or (kind is float and value == 0):
        what = "a whole number" if kind is int else "a number of seconds"
        raise ConfigError(
            f"store.url: {name} must be {what} of at least {least}; found {options[name]!r}",
            reason="config-invalid",
        )
    return value


def _check_tls_options(s: StoreSettings) -> None:
    def refuse(text: str) -> None:
        raise ConfigError(f"store.url: {text}", reason="config-invalid")

    if s.sslmode and s.sslmode not in SSL_MODES:
        refuse(f"sslmode must be one of {', '.join(SSL_MODES)}; found {s.sslmode!r}")
    checked = s.sslmode in ("require", "verify-ca", "verify-full")
    for name in ("sslrootcert", "sslcert", "sslkey"):
        if getattr(s, name) and not checked:
            refuse(f"{name} needs sslmode=require, verify-ca or verify-full")
    if s.sslmode in ("verify-ca", "verify-full") and not s.sslrootcert:
        refuse(f"sslmode={s.sslmode} needs sslrootcert (a CA file, or 'system')")
    if bool(s.sslcert) != bool(s.sslkey):
        refuse("sslcert and sslkey go together: give both or neither")


def store_url(url: str, base: Path) -> str:
    """Turn the operator's URL into an async SQLAlchemy URL, with its options (checked, file
    options made absolute).

    ``sqlite:///hub.db`` (relative to the config file), ``sqlite:////abs/hub.db``,
    ``postgresql://user@host:port/db?sslmode=verify-full&sslrootcert=ca.pem``.
    """
    if url.startswith("sqlite:///"):
        rest, sep, query = url[len("sqlite:///") :].partition("?")
        db = Path(rest)
        db = db if db.is_absolute() else (base / db).resolve()
        result = f"sqlite+aiosqlite:///{db}{sep}{query}"
    elif url.startswith(("postgresql://", "postgres://")):
        rest, sep, query = url.split("://", 1)[1].partition("?")
        pairs = [
            (k, str(_resolve(base, v)) if k in PATH_OPTIONS and v != "system" else v)
            for k, v in urllib.parse.parse_qsl(query, keep_blank_values=True)
        ]
        encoded = urllib.parse.urlencode(pairs, safe="/")
        result = f"postgresql+asyncpg://{rest}" + (f"?{encoded}" if encoded else "")
    else:
        result = url
    store_settings(result)  # refuses what is not a store URL or has a wrong option
    return result


def render_config(
    *,
    party: str,
    listen: str,
    domestic_listen: str,
    pki: Path,
    partners: Mapping[str, str],
    store: str = "sqlite:///hub.db",
    audit_listen: str = "",
) -> str:
    """The text of a working hub.toml for a development federation made by ``pki init``."""

    def q(value: str | Path) -> str:
        return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'

    own = pki / party
    lines = [
        f"# customs-hub configuration for {party}, written by `customs-hub init`.",
        "# Reference: README.md, section 'Configuration'.",
        "# Relative paths are relative to this file.",
        f"party = {q(party)}",
        "",
        "[server]",
        f"listen = {q(listen)}            # partner port: mTLS, client certificates required",
        f"domestic_listen = {q(domestic_listen)}   # domestic systems of this administration",
        "",
        "[tls]",
        f"cert = {q(own / 'tls.pem')}",
        f"key = {q(own / 'tls.key')}",
        f"trust_anchor = {q(own / 'ca.pem')}",
        f"crls = [{q(own / 'crl.pem')}]   # our CA's revocation list: customs-hub trust revoke",
        "",
        "[signing]",
        f"cert = {q(own / 'signing.pem')}",
        f"key = {q(own / 'signing.key')}",
        "# rotating it: docs/key-rotation.md (previous_certs, carry_certificate)",
        "",
        "[trail]",
        f"key = {q(own / 'trail.key')}       # signs checkpoints; auditors get trail.vkey",
        "checkpoint_entries = 1000",
        "checkpoint_seconds = 10",
        "",
        "[store]",
        f"url = {q(store)}",
        "",
    ]
    if audit_listen:
        lines += [
            "[audit]",
            f"listen = {q(audit_listen)}   # auditors: TLS and bearer tokens",
            f"token_key = {q(own / 'audit.key')}   # signs tokens: customs-hub token issue",
            f'issuer = "customs-hub/{party}"',
            f'audience = "customs-hub/{party}"',
            "",
        ]
    lines += [
        "[limits]",
        "clock_skew_seconds = 300",
        "message_ttl_seconds = 604800",
        "",
    ]
    for name, endpoint in partners.items():
        lines += [
            f"[partners.{name}]",
            f"endpoint = {q(endpoint)}",
            f"identity = {q(PARTY_URI_PREFIX + name)}",
            f"trust_anchor = {q(pki / name / 'ca.pem')}",
            f"signing_certs = [{q(pki / name / 'signing.pem')}]",
            f"crls = [{q(pki / name / 'crl.pem')}]",
            f"countries = [{q(name)}]",
            "",
        ]
    everyone = ", ".join(q(n) for n in partners)
    lines += [
        "[routes]",
        f'GoodsDeclaration = "{BY_COUNTRY}"',
        f"AeoStatus = [{everyone}]",
        f"ControlResult = [{everyone}]",
        "",
    ]
    return "\n".join(lines)
