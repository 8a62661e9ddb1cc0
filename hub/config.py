"""The hub's configuration: one TOML file, read into typed, frozen objects.

Every limit lives in ``Limits`` with its default and the reason for the number. Relative paths
in the file are relative to the file's folder. Errors name the file and the key.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import timedelta
from pathlib import Path
from typing import Any

from hub.core.errors import ConfigError
from hub.core.limits import XmlLimits
from hub.core.messages import full_body_type
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
    store_url: str
    partners: Mapping[str, PartnerConfig]
    routes: Mapping[str, Sequence[str] | str]
    countries: tuple[str, ...] = ()
    limits: Limits = field(default_factory=Limits)
    folders: Mapping[str, FolderConfig] = field(default_factory=dict)
    trail_origin: str = ""  # the checkpoints' origin line; "customs-hub/<party>" by default
    checkpoint_entries: int = 1000  # sign a checkpoint after this many new entries ...
    checkpoint_seconds: float = 10.0  # ... or this long after the last one, if it grew
    # Auditors: the Audit service's port (TLS with the hub's certificate; empty: none), and
    # the Ed25519 key that signs and verifies their tokens, with the tokens' iss and aud
    audit_listen: str = ""
    audit_key: Path | None = None
    token_issuer: str = ""
    token_audience: str = ""

    @property
    def issuer(self) -> str:
        return self.token_issuer or f"customs-hub/{self.party}"

    @property
    def audience(self) -> str:
        return self.token_audience or f"customs-hub/{self.party}"

    @property
    def origin(self) -> str:
        return self.trail_origin or f"customs-hub/{self.party}"


class _Reader:
    """Reads typed values out of a TOML table and names file and key in every error."""

    def __init__(self, path: Path, data: Mapping[str, Any], prefix: str = "") -> None:
        self.path, self.data, self.prefix = path, data, prefix

    def _fail(self, key: str, expected: str, found: object) -> ConfigError:
        return ConfigError(
            f"{self.path}: {self.prefix}{key} must be {expected}; found {found!r}",
            reason="config-invalid",
        )

    def table(self, key: str, required: bool = True) -> _Reader:
        value = self.data.get(key, None if required else {})
        if not isinstance(value, dict):
            raise self._fail(key, "a table", value)
        return _Reader(self.path, value, f"{self.prefix}{key}.")

    def text(self, key: str, default: str | None = None) -> str:
        value = self.data.get(key, default)
        if not isinstance(value, str) or not value:
            raise self._fail(key, "a non-empty string", value)
        return value

    def file_path(self, key: str) -> Path:
        p = Path(self.text(key))
        return p if p.is_absolute() else (self.path.parent / p).resolve()

    def str_list(self, key: str, default: Sequence[str] | None = None) -> tuple[str, ...]:
        value = self.data.get(key, default)
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise self._fail(key, "a list of strings", value)
        return tuple(value)


def _party(reader: _Reader, key: str, value: str) -> str:
    if not PARTY_ID.fullmatch(value):
        raise reader._fail(key, "a party id such as 'CN'", value)
    return value


def load_config(path: Path | str) -> HubConfig:
    path = Path(path).resolve()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file", reason="config-missing") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}", reason="config-invalid") from None
    root = _Reader(path, raw)
    party = _party(root, "party", root.text("party"))
    server, tls, signing, store, trail = (
        root.table(k) for k in ("server", "tls", "signing", "store", "trail")
    )
    partners: dict[str, PartnerConfig] = {}
    for name in root.table("partners", required=False).data:
        p = root.table("partners").table(name)
        _party(root, f"partners.{name}", name)
        identity = p.text("identity", PARTY_URI_PREFIX + name)
        if identity != PARTY_URI_PREFIX + name:
            raise p._fail("identity", f"{PARTY_URI_PREFIX}{name}", identity)
        partners[name] = PartnerConfig(
            party=name,
            endpoint=p.text("endpoint"),
            trust_anchor=p.file_path("trust_anchor"),
            signing_certs=tuple(
                q if q.is_absolute() else (path.parent / q).resolve()
                for q in map(Path, p.str_list("signing_certs"))
            ),
            countries=p.str_list("countries", [name]),
            raw_formats=p.str_list("raw_formats", []),
        )
    if party in partners:
        raise ConfigError(f"{path}: partners.{party} is this hub itself", reason="config-invalid")
    routes: dict[str, Sequence[str] | str] = {}
    route_table = root.table("routes", required=False)
    for key, value in route_table.data.items():
        body_type = full_body_type(key)
        if body_type is None:
            raise route_table._fail(key, "a known message type", key)
        if value == BY_COUNTRY:
            routes[body_type] = BY_COUNTRY
            continue
        targets = route_table.str_list(key)
        for t in targets:
            if t not in partners:
                raise route_table._fail(key, "a list of configured partners", t)
        routes[body_type] = targets
    audit = root.table("audit", required=False)
    audit_listen = audit.text("listen") if "listen" in audit.data else ""
    audit_key = audit.file_path("token_key") if "token_key" in audit.data else None
    if audit_listen and audit_key is None:
        raise audit._fail("token_key", "the Ed25519 key that signs auditors' tokens", None)
    limits_table = root.table("limits", required=False)
    known = {f.name: f for f in fields(Limits)}
    limit_values: dict[str, Any] = {}
    for key, value in limits_table.data.items():
        if key not in known:
            raise limits_table._fail(key, f"one of {', '.join(sorted(known))}", key)
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise limits_table._fail(key, "a number", value)
        if key == "retry_jitter" and not 0 <= value <= 1:
            raise limits_table._fail(key, "a fraction from 0 to 1", value)
        if key == "retry_multiplier" and value < 1:
            raise limits_table._fail(key, "a number of at least 1", value)
        if key != "retry_jitter" and value <= 0:
            raise limits_table._fail(key, "a positive number", value)
        limit_values[key] = int(value) if known[key].type == "int" else float(value)
    return HubConfig(
        path=path,
        party=party,
        listen=server.text("listen"),
        domestic_listen=server.text("domestic_listen"),
        tls_cert=tls.file_path("cert"),
        tls_key=tls.file_path("key"),
        trust_anchor=tls.file_path("trust_anchor"),
        signing_cert=signing.file_path("cert"),
        signing_key=signing.file_path("key"),
        trail_key=trail.file_path("key"),
        trail_origin=trail_origin(trail),
        checkpoint_entries=trail_number(trail, "checkpoint_entries", 1000, int),
        checkpoint_seconds=trail_number(trail, "checkpoint_seconds", 10.0, float),
        audit_listen=audit_listen,
        audit_key=audit_key,
        token_issuer=audit.text("issuer") if "issuer" in audit.data else "",
        token_audience=audit.text("audience") if "audience" in audit.data else "",
        store_url=store_url(store.text("url"), path.parent),
        partners=partners,
        routes=routes,
        countries=root.str_list("countries", [party]),
        limits=Limits(**limit_values),
        folders=read_folders(root, partners),
    )


def read_folders(root: _Reader, partners: Mapping[str, PartnerConfig]) -> dict[str, FolderConfig]:
    folders: dict[str, FolderConfig] = {}
    table = root.table("folders", required=False)
    paths: dict[Path, str] = {}
    for name in table.data:
        if not FOLDER_NAME.fullmatch(name):
            raise table._fail(name, "a folder name of lower-case letters, digits and '-'", name)
        f = table.table(name)
        known = {"path", "inbox_formats", "outbox_format", "recipients", "settle_seconds"}
        for key in f.data:
            if key not in known:
                raise f._fail(key, f"one of {', '.join(sorted(known))}", key)
        formats = f.table("inbox_formats", required=False)
        inbox: dict[str, str] = {}
        for sub in formats.data:
            if not INBOX_SUBFOLDER.fullmatch(sub):
                raise formats._fail(sub, "a plain subfolder name of inbox/", sub)
            inbox[sub] = formats.text(sub)
        recipients = f.str_list("recipients", [])
        for r in recipients:
            if r not in partners:
                raise f._fail("recipients", "a list of configured partners", r)
        settle = f.data.get("settle_seconds", 2.0)
        if not isinstance(settle, int | float) or isinstance(settle, bool) or settle < 0:
            raise f._fail("settle_seconds", "a number of seconds, 0 or more", settle)
        path = f.file_path("path")
        if path in paths:
            raise f._fail("path", f"a path no other folder uses (folders.{paths[path]} does)", path)
        paths[path] = name
        outbox = f.data.get("outbox_format", "")
        if not isinstance(outbox, str):
            raise f._fail("outbox_format", 'a format id, or "" for no outbox', outbox)
        folders[name] = FolderConfig(
            name=name,
            path=path,
            inbox_formats=inbox,
            outbox_format=outbox,
            recipients=recipients,
            settle_seconds=float(settle),
        )
    return folders


def trail_origin(trail: _Reader) -> str:
    origin = trail.data.get("origin", "")
    if not isinstance(origin, str) or (origin and not origin.isprintable()):
        raise trail._fail("origin", "one printable line", origin)
    return origin


def trail_number(trail: _Reader, key: str, default: float, kind: type) -> Any:
    value = trail.data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise trail._fail(key, "a positive number", value)
    return kind(value)


def store_url(url: str, base: Path) -> str:
    """Turn the operator's URL into an async SQLAlchemy URL.

    ``sqlite:///hub.db`` (relative to the config file), ``sqlite:////abs/hub.db``,
    ``postgresql://user@host:port/db``.
    """
    if url.startswith("sqlite:///"):
        db = Path(url[len("sqlite:///") :])
        db = db if db.is_absolute() else (base / db).resolve()
        return f"sqlite+aiosqlite:///{db}"
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+asyncpg://" + url.split("://", 1)[1]
    if url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
        return url
    raise ConfigError(
        f"store.url must start with sqlite:/// or postgresql://; found {url.split(':', 1)[0]}:...",
        reason="config-invalid",
    )


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
        "",
        "[signing]",
        f"cert = {q(own / 'signing.pem')}",
        f"key = {q(own / 'signing.key')}",
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
