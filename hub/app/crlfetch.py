"""Revocation lists fetched from their CA's distribution point, for the anchors whose config
names one (``crl_url``, or ``crl_fetch = true`` and the distribution point of its
certificates).

A fetched list is used only if it is what a file would have to be (hub/core/revocation.py
``parse_crl``: at most MAX_CRL_BYTES, issued and signed by the anchor, with a nextUpdate) and
succeeds the one held (``succession``: signed by the same CA key, not older, a greater CRL
number; a rolling-over CA's successor may not replace its predecessor's list). It is then
written over the first file of the anchor's ``crls`` (a whole file or none, hub/files.py), so that a
restart starts from it and the watcher (hub/app/revocation.py) reads it like any other change:
the file stays the one source of what is revoked. Anything else (the server down or slow, an
HTTP error, a redirect, too many bytes, a list that does not verify or is older) keeps the
list in use and is logged in one line, once until the outcome changes; the last outcome of
each anchor is kept beside its file (``<file>.fetch.json``) for ``customs-hub status``.

Plain HTTP is enough: a CRL is signed, and what is checked is the signature, not the server.
Only http and https are fetched (http.client, through no proxy, with redirects refused: a
distribution point that moves is named anew in the config), with one deadline on the whole
fetch and a bound on bytes. A distribution point read from a partner's certificate is the
partner's choice, so it is fetched only from public addresses unless the operator allows
others (``crl_fetch_private``): a partner cannot make this hub call into its own network.
"""

from __future__ import annotations

import asyncio
import http.client
import io
import ipaddress
import json
import logging
import socket
import ssl
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from hub.app import keys
from hub.app.audit import Audit
from hub.app.context import HubContext
from hub.core.errors import ConfigError, HubError
from hub.core.revocation import MAX_CRL_BYTES, Crl, parse_crl, succession
from hub.core.times import rfc3339
from hub.files import write_atomically

log = logging.getLogger("customs_hub.service")

# After a failed fetch the next is tried this long later at most (or crl_fetch_seconds, if
# shorter): a distribution point that is down for maintenance is not hammered.
RETRY_SECONDS = 60.0
# The outcome file beside each fetched list is small: one JSON object.
MAX_OUTCOME_BYTES = 4096
CHUNK = 64 * 1024
REJECTION_SOURCE = "crl-fetch"  # the source of a refused list's record in the trail


class FetchFailed(Exception):
    """A fetch that brought nothing usable; the message is the one line logged. ``refused``:
    what came was refused (bad input, recorded in the trail), not merely missing."""

    def __init__(self, text: str, *, refused: bool = False) -> None:
        super().__init__(text)
        self.refused = refused


@dataclass(frozen=True)
class Outcome:
    """The last fetch of one anchor's list, as ``status`` shows it."""

    party: str
    url: str
    at: datetime
    ok: bool
    text: str  # "fetched CRL number 4 ..." or why it was not used

    def as_json(self) -> bytes:
        return json.dumps(
            {
                "party": self.party,
                "url": self.url,
                "at": rfc3339(self.at),
                "ok": self.ok,
                "text": self.text,
            },
            sort_keys=True,
        ).encode()


def outcome_path(target: Path) -> Path:
    return target.with_name(target.name + ".fetch.json")


def read_outcome(target: Path) -> Outcome | None:
    """The last outcome kept beside ``target``, if any can be read."""
    try:
        with outcome_path(target).open("rb") as f:
            raw = f.read(MAX_OUTCOME_BYTES + 1)
        if len(raw) > MAX_OUTCOME_BYTES:
            return None
        found: dict[str, Any] = json.loads(raw)
        return Outcome(
            str(found["party"]),
            str(found["url"]),
            datetime.fromisoformat(str(found["at"]).replace("Z", "+00:00")),
            bool(found["ok"]),
            str(found["text"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def download(
    url: str, timeout: float, *, private_ok: bool = True, limit: int = MAX_CRL_BYTES
) -> bytes:
    """The body of ``url`` (http or https), at most ``limit`` bytes, within ``timeout`` seconds
    in all; FetchFailed saying why not. Blocking: run it off the event loop.

    The deadline holds for the whole fetch, not for each read: every read of the socket is
    given only the time left (``_Deadline``), so a server that trickles its headers or its
    body a byte at a time is given up on time. With ``private_ok`` False (a distribution point
    read from a certificate, which its owner wrote) a host that resolves to a loopback,
    private, link-local, multicast or unspecified address is refused before any connection,
    and the connection goes to the address checked, so a second lookup cannot lead elsewhere.
    No proxy is used (the ``*_proxy`` variables are not read) and a redirect is not followed."""
    parts = urllib.parse.urlsplit(url)
    https = parts.scheme == "https"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FetchFailed(f"{url!r} is not an http(s) URL with a host")
    deadline = time.monotonic() + timeout
    host = parts.hostname
    try:
        port = parts.port or (443 if https else 80)
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except ValueError:
        raise FetchFailed(f"{url!r} has no valid port") from None
    except OSError as exc:  # socket.gaierror
        raise FetchFailed(f"cannot resolve {host}: {exc.strerror or exc}") from None
    if not private_ok:
        for *_, address in found:
            if not _public(str(address[0])):
                raise FetchFailed(
                    f"refused: {host} resolves to {address[0]}, not a public address; a CRL "
                    "distribution point named by a certificate is fetched only from public "
                    "addresses (crl_fetch_private = true allows others)"
                )
    try:
        sock = _connect([(family, address) for family, *_, address in found], deadline)
        try:
            if https:
                sock.settimeout(_left(deadline))  # the handshake, as a whole, within it
                sock = ssl.create_default_context().wrap_socket(sock, server_hostname=host)
            connection = http.client.HTTPConnection(host, port)
            connection.sock = _Deadline(sock, deadline)
            return _get(connection, parts, limit)
        finally:
            sock.close()
    except TimeoutError:
        raise FetchFailed(f"no whole answer within {timeout:g} s") from None
    except http.client.HTTPException as exc:
        raise FetchFailed(f"not a valid HTTP answer: {type(exc).__name__}") from None
    except ssl.SSLError as exc:
        raise FetchFailed(f"TLS failed: {exc.reason or exc}") from None
    except OSError as exc:  # refused, reset, and the like
        raise FetchFailed(f"cannot fetch it: {exc.strerror or type(exc).__name__}") from None


def _get(
    connection: http.client.HTTPConnection, parts: urllib.parse.SplitResult, limit: int
) -> bytes:
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    connection.request(
        "GET",
        target,
        headers={
            "Host": parts.netloc.rpartition("@")[2],  # no user info: nothing is sent for it
            "Accept": "application/pkix-crl, application/x-pem-file, */*;q=0.5",
            "User-Agent": "customs-hub",
            "Connection": "close",
        },
    )
    response = connection.getresponse()
    if response.status != 200:
        moved = " (redirects are not followed)" if 300 <= response.status < 400 else ""
        raise FetchFailed(f"HTTP {response.status} {response.reason}{moved}")
    length = response.headers.get("Content-Length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise FetchFailed(f"the server offers {length} bytes; a CRL is at most {limit}")
    body = bytearray()
    while chunk := response.read1(CHUNK):  # what one read of the socket brought
        body += chunk
        if len(body) > limit:
            raise FetchFailed(f"the server sent more than {limit} bytes")
    if response.length:  # what Content-Length still owes: the connection ended early
        raise FetchFailed(f"the answer ended {response.length} bytes short of its length")
    return bytes(body)


def _public(address: str) -> bool:
    """Whether an address is one a distribution point named by a partner may lead to: not
    loopback, private, link-local (169.254.169.254, cloud metadata), shared, reserved,
    multicast or unspecified, nor such an IPv4 address mapped into IPv6."""
    ip = ipaddress.ip_address(address.partition("%")[0])  # an IPv6 scope id is no part of it
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def _left(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError
    return left


def _connect(addresses: list[tuple[int, Any]], deadline: float) -> socket.socket:
    """A TCP connection to the first of ``addresses`` that takes one before the deadline."""
    failure: OSError = OSError("no address")
    for family, address in addresses:
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.settimeout(_left(deadline))
            sock.connect(address)
        except OSError as exc:
            sock.close()
            failure = exc
        else:
            return sock
    raise failure


class _Deadline:
    """A connected socket as http.client uses it (``sendall``, ``makefile``, ``close``), each
    read and write of which is given only the time left to one deadline, then TimeoutError.
    Closing it leaves the socket open: ``download`` closes it when the answer is read."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self.sock, self.deadline = sock, deadline

    def limit(self) -> None:
        """The socket's timeout set to the time left, or TimeoutError if none is."""
        self.sock.settimeout(_left(self.deadline))

    def sendall(self, data: bytes) -> None:
        self.limit()
        self.sock.sendall(data)

    def makefile(self, mode: str = "rb", *args: object, **kwargs: object) -> io.BufferedReader:
        return io.BufferedReader(_DeadlineReader(self))

    def close(self) -> None:
        pass


class _DeadlineReader(io.RawIOBase):
    def __init__(self, owner: _Deadline) -> None:
        super().__init__()
        self.owner = owner

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        self.owner.limit()
        return self.owner.sock.recv_into(buffer)


class CrlFetcher:
    """Fetches each configured anchor's list when it is due; ``on_written`` (the watcher's
    re-read) is called after a newer list is written, so that it takes effect at once."""

    def __init__(
        self,
        hub: HubContext,
        audit: Audit,
        on_written: Callable[[], Awaitable[object]],
    ) -> None:
        self.hub, self.audit = hub, audit
        self.on_written = on_written
        self._due: dict[str, float] = {}  # party -> monotonic time of its next fetch
        self._logged: dict[str, str] = {}  # party -> the failure last logged
        # the sources as read under the settings in use (a reload or new list reads them again)
        self._sources: tuple[object, list[keys.CrlSource]] = (None, [])

    async def sources(self) -> list[keys.CrlSource]:
        settings = self.hub.settings
        if self._sources[0] is not settings:
            self._sources = (settings, await self.hub.off_loop(keys.crl_sources, settings.config))
        return self._sources[1]

    async def run_due(self) -> None:
        """Fetch every list that is due (the first time, at once)."""
        sources = await self.sources()
        now = time.monotonic()
        for source in sources:
            if self._due.get(source.party, 0.0) <= now:
                await self.fetch(source)

    async def fetch(self, source: keys.CrlSource) -> Outcome:
        limits = self.hub.config.limits
        held = self._held(source)
        data = b""
        try:
            if not source.url:
                raise FetchFailed(
                    "its certificates name no http(s) CRL distribution point (crl_fetch)"
                )
            data = await asyncio.to_thread(
                download,
                source.url,
                limits.crl_fetch_timeout_seconds,
                private_ok=source.private_ok,
            )
            fetched, new = self._check(source, data, held)
        except FetchFailed as exc:
            outcome = await self._failed(source, str(exc), data if exc.refused else None)
        else:
            if not new:
                outcome = self._succeeded(source, fetched, "unchanged")
            else:
                try:
                    await asyncio.to_thread(write_atomically, source.target, data)
                except OSError as exc:
                    outcome = await self._failed(
                        source, f"cannot write {source.target}: {exc.strerror or exc}", None
                    )
                else:
                    outcome = self._succeeded(source, fetched, f"written to {source.target}")
                    log.info(
                        "revocation list of %s fetched from %s: %s",
                        source.key,
                        source.url,
                        outcome.text,
                    )
                    await self.on_written()
        try:
            await asyncio.to_thread(
                write_atomically, outcome_path(source.target), outcome.as_json()
            )
        except OSError as exc:
            log.error("cannot keep the fetch outcome beside %s: %s", source.target, exc)
        return outcome

    def _held(self, source: keys.CrlSource) -> Crl | None:
        anchor = self.hub.revocation.anchors.get(source.party)
        wanted = str(source.target)
        if anchor is None:
            return None
        return next((c for c in anchor.crls if c.source.endswith(wanted)), None)

    def _check(self, source: keys.CrlSource, data: bytes, held: Crl | None) -> tuple[Crl, bool]:
        """The fetched list, and whether it is to be written (False: it is the one held);
        FetchFailed if it may not be used."""
        try:
            fetched = parse_crl(data, source.anchor, source.url)
        except ConfigError as exc:
            raise FetchFailed(exc.message.removeprefix(f"{source.url}: "), refused=True) from None
        verdict = succession(fetched, held)
        if verdict == "same":
            return fetched, False
        if verdict != "newer":
            raise FetchFailed(f"not newer than the list in use: {verdict}", refused=True)
        own = fetched.serials & source.own_serials
        if own:
            raise FetchFailed(
                f"it revokes this hub's own certificate (serial {min(own):x}): not written, "
                "since the hub would not start with it; have new certificates issued",
                refused=True,
            )
        if fetched.stale(self.hub.clock()):
            raise FetchFailed(
                f"it is stale already (nextUpdate {rfc3339(fetched.next_update)})", refused=True
            )
        return fetched, True

    def _schedule(self, source: keys.CrlSource, seconds: float) -> None:
        limits = self.hub.config.limits
        wait = min(limits.crl_fetch_seconds, max(limits.revocation_check_seconds, seconds))
        self._due[source.party] = time.monotonic() + wait

    def _succeeded(self, source: keys.CrlSource, crl: Crl, what: str) -> Outcome:
        self._logged.pop(source.party, None)
        now = self.hub.clock()
        # half the time left to its nextUpdate: the next list is out well before it is due
        self._schedule(source, (crl.next_update - now).total_seconds() / 2)
        number = f"CRL number {crl.number}" if crl.number is not None else "a CRL"
        text = (
            f"{what}: {number} of {rfc3339(crl.this_update, 'seconds')}, "
            f"{len(crl.serials)} revoked, next update {rfc3339(crl.next_update, 'seconds')}"
        )
        return Outcome(source.party, source.url, now, True, text)

    async def _failed(self, source: keys.CrlSource, why: str, refused: bytes | None) -> Outcome:
        """Log it (once, until the outcome changes) and, if what came was refused, record it
        in the trail with its digest: a list that tried to un-revoke is evidence."""
        limits = self.hub.config.limits
        self._due[source.party] = time.monotonic() + min(limits.crl_fetch_seconds, RETRY_SECONDS)
        if self._logged.get(source.party) != why:
            self._logged[source.party] = why
            log.error(
                "fetching the revocation list of %s from %s failed; the list in use stays: %s",
                source.key,
                source.url or "(no URL)",
                why,
            )
            if refused is not None:
                error = ConfigError(
                    f"revocation list of {source.key} from {source.url} refused: {why}",
                    reason="crl-refused",
                )
                try:
                    await self.audit.record_rejection(REJECTION_SOURCE, refused, error)
                except HubError as exc:
                    log.error("the refused revocation list could not be recorded: %s", exc)
        return Outcome(source.party, source.url, self.hub.clock(), False, why)
