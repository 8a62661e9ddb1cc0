"""Every reason code the hub answers with, in one place: its status and when it is given.

A refusal is a ``HubError`` with a stable kebab-case ``reason`` (hub/core/errors.py). This registry
is what callers may rely on: tests/test_reasons.py holds it against the code (every reason the
code raises is here with the status it is raised with, and every reason here is raised) and
against docs/adr/0002-status-codes.md, whose table is ``markdown()`` below
(``python -m hub.core.reasons`` prints it). A format plugin may raise reasons of its own; they are
its to document.
"""

from __future__ import annotations

from dataclasses import dataclass

from hub.core.errors import Status

BAD, NOT_FOUND, EXISTS = Status.INVALID_ARGUMENT, Status.NOT_FOUND, Status.ALREADY_EXISTS
DENIED, EXHAUSTED = Status.PERMISSION_DENIED, Status.RESOURCE_EXHAUSTED
PRECONDITION, INTERNAL = Status.FAILED_PRECONDITION, Status.INTERNAL
UNAVAILABLE, UNAUTHENTICATED = Status.UNAVAILABLE, Status.UNAUTHENTICATED


@dataclass(frozen=True)
class Reason:
    statuses: tuple[Status, ...]
    when: str


def _r(when: str, *statuses: Status) -> Reason:
    return Reason(statuses, when)


REASONS: dict[str, Reason] = {
    # --- envelopes from partners (PartnerExchange) ---------------------------------------
    "envelope-malformed": _r("the bytes are not an Envelope", BAD),
    "header-malformed": _r(
        "the signed header does not parse, or a field breaks its rule (message id, body type, "
        "parties); FAILED_PRECONDITION when it lacks created_at or expires_at",
        BAD,
        PRECONDITION,
    ),
    "body-malformed": _r("the body does not parse as the type its header names", BAD),
    "body-digest-mismatch": _r(
        "the body is not the one the signed header digests", UNAUTHENTICATED
    ),
    "too-large": _r(
        "an envelope over max_envelope_bytes; from a domestic system, a signed message larger "
        "than partners accept",
        BAD,
    ),
    "too-many-signatures": _r("more than 4 signatures on one envelope", BAD),
    "signature-missing": _r("an envelope with no signature at all", UNAUTHENTICATED),
    "signature-invalid": _r(
        "no signature verifies with a key the trust store binds to the sender", UNAUTHENTICATED
    ),
    "unsupported-body-type": _r("a body type this hub does not know", BAD),
    "unsupported-schema-version": _r("a header schema version this hub does not read", BAD),
    "sender-mismatch": _r("the header names a sender other than the peer's certificate", DENIED),
    "wrong-recipient": _r("the envelope is addressed to another party", PRECONDITION),
    "expired": _r("past the envelope's expires_at (with the allowed clock skew)", PRECONDITION),
    "not-yet-valid": _r(
        "created_at ahead of this hub's clock beyond the skew; the sender keeps it queued",
        PRECONDITION,
    ),
    "lifetime-invalid": _r(
        "expires_at before created_at, or a lifetime over max_lifetime_seconds", PRECONDITION
    ),
    "message-id-conflict": _r("the same sender and id over another signed header", EXISTS),
    "not-issuer": _r(
        "a partner's AEO status naming another issuing administration (PERMISSION_DENIED); a "
        "domestic AEO status naming another than this hub's (INVALID_ARGUMENT)",
        DENIED,
        BAD,
    ),
    "missing-business-key": _r("a message without the key its kind is found by", BAD),
    "business-key-invalid": _r(
        "a business key or id over 128 characters or not printable, or over 1,024 in one "
        "message; from partners and domestic systems alike",
        BAD,
    ),
    "batch-malformed": _r("an Exchange frame that is not an EnvelopeBatch; ends the stream", BAD),
    "limit-exceeded": _r(
        "an Exchange frame with too many envelopes, a Query with over 1,000 AEO ids or a "
        "Snapshot with over 64 ranges (RESOURCE_EXHAUSTED); a document over an XML, EDIFACT or "
        "CSV limit (INVALID_ARGUMENT, with its location)",
        EXHAUSTED,
        BAD,
    ),
    "partner-limit": _r(
        "a partner's Deliver calls or Exchange streams over its own allowance (partner_calls, "
        "partner_streams); recorded at most once a minute per partner",
        EXHAUSTED,
    ),
    "format-not-allowed": _r(
        "a partner's RawDocument in a format not in its raw_formats, or not named", BAD
    ),
    # --- partners' questions about this hub's AEOs, and their answers (registry-sync.md) ----
    "query-invalid": _r(
        "a Query naming no AEO id, or one empty, over 128 characters or not printable; a "
        "Snapshot range that holds no id or whose ends no id can have",
        BAD,
    ),
    "answer-invalid": _r(
        "a partner's answer to this hub's Query or Snapshot that does not answer it (another "
        "request's id or digest, ids or ranges not asked for, a digest whose entries or split "
        "do not fit it): refused whole, nothing of it received",
        PRECONDITION,
    ),
    "query-replayed": _r(
        "a partner's Query or Snapshot whose message id this hub answered before (its "
        "answered leaf) or is answering now",
        EXISTS,
    ),
    "partner-refused": _r(
        "`registry query|sync`: the partner's hub refused the request; its status and reason "
        "(e.g. not-covered-by-agreement) are in the message",
        PRECONDITION,
    ),
    "not-covered-by-agreement": _r(
        "with [agreements] configured: a domestic submission (or a re-signed or re-routed "
        "message) to a partner no agreement in effect today lets that type go to, the whole "
        "submission refused; a partner's envelope of a type no agreement in effect lets come "
        "from it (a signed REJECTED receipt); a partner's Query or Snapshot when none lets AEO "
        "statuses go to it; `registry query|sync` with a partner none lets them come from",
        PRECONDITION,
    ),
    # --- who is calling (mTLS) and whom the hub trusts -------------------------------------
    "no-peer-certificate": _r("a call without a readable client certificate", DENIED),
    "no-party-identity": _r("a certificate naming no party, or more than one", DENIED),
    "party-id-invalid": _r("a party id that breaks the pattern (hub.core.trust.PARTY_ID)", DENIED),
    "party-mismatch": _r(
        "a signing certificate configured for one party, or carried with its signature, naming "
        "another",
        DENIED,
    ),
    "untrusted-issuer": _r("a certificate its party's trust anchor did not issue", DENIED),
    "untrusted-peer": _r("a certificate or key not trusted for the party it claims", DENIED),
    "unknown-partner": _r(
        "a peer whose certificate names a party that is not a partner (PERMISSION_DENIED, "
        "recorded at most once a minute); a domestic submission to a recipient that is not a "
        "partner (FAILED_PRECONDITION); a queued message for a party no longer a partner "
        "(UNAVAILABLE: it stays queued)",
        DENIED,
        PRECONDITION,
        UNAVAILABLE,
    ),
    "certificate-expired": _r(
        "a certificate past its notAfter when the hub loads it or a peer calls "
        "(PERMISSION_DENIED); an envelope or receipt whose signing certificate had expired at "
        "its signing time (created_at, received_at) or, beyond the clock skew, at this hub's "
        "clock (UNAUTHENTICATED)",
        DENIED,
        UNAUTHENTICATED,
    ),
    "certificate-not-yet-valid": _r(
        "certificate-expired's twin, before the certificate's notBefore",
        DENIED,
        UNAUTHENTICATED,
    ),
    "not-a-signing-certificate": _r(
        "a signing certificate outside the signing profile (docs/adr/0008: keyUsage without "
        "digitalSignature or nonRepudiation, or an extendedKeyUsage without "
        "id-kp-documentSigning, such as a TLS certificate), at load (PERMISSION_DENIED; from "
        "the config files, config-invalid naming the file) or at use (UNAUTHENTICATED)",
        DENIED,
        UNAUTHENTICATED,
    ),
    "not-a-tls-certificate": _r(
        "a certificate not for TLS client authentication, or a TLS certificate on the "
        "message-signing key",
        DENIED,
    ),
    "no-signing-key": _r("a partner configured without a signing certificate", DENIED),
    "certificate-revoked": _r(
        "a partner's TLS client certificate, or the signing certificate of an envelope or a "
        "receipt, on a revocation list of its party's trust anchor (recorded at most once a "
        "minute per partner for connections); the outbox stops a partner whose TLS server "
        "certificate or every signing certificate is on it; see docs/adr/0009-revocation.md",
        DENIED,
    ),
    "crl-stale": _r(
        "a revocation list of the party's trust anchor is past its nextUpdate and "
        "crl_stale = closed (the default): that anchor's certificates are refused until a "
        "current list is in place; a sender keeps its messages queued",
        DENIED,
    ),
    "crl-refused": _r(
        "a revocation list fetched from a distribution point and not used: not a CRL, too "
        "large, not signed by its trust anchor, not newer than the one in use, stale, or "
        "revoking this hub's own certificate (recorded in the trail; the list in use stays)",
        PRECONDITION,
    ),
    "unsupported-key": _r("a signing key neither Ed25519 nor ECDSA P-256", DENIED),
    "certificate-malformed": _r(
        "a certificate carried with a signature (docs/adr/0010-key-rotation.md) over 16 KiB, "
        "not DER X.509, or holding another key than the signature names",
        DENIED,
    ),
    # --- domestic submissions and subscriptions ---------------------------------------------
    "no-document": _r("a request or a file that carries no document", BAD),
    "no-route": _r(
        "no recipient given and no routing rule for the document; with no agreements "
        "configured, a partner's Query or Snapshot when the routes send it no AEO statuses",
        PRECONDITION,
    ),
    "submission-invalid": _r(
        "a correlation id a partner would refuse, or a submission id over 128 characters", BAD
    ),
    "no-subscriber": _r("a Subscribe call without a subscriber name", BAD),
    "lookup-invalid": _r(
        "a Recognition lookup without an id, with one over 128 characters or not printable, "
        "or with an as_of that is not a yyyy-mm-dd date; a batch of no queries",
        BAD,
    ),
    "lookup-too-large": _r("a Recognition batch of more than 1,000 queries", BAD),
    "request-malformed": _r(
        "on the domestic and audit ports, a request that is not the method's message", BAD
    ),
    # --- documents (translators) ------------------------------------------------------------
    "not-well-formed": _r("not well-formed XML, JSON or CSV (with line and column)", BAD),
    "forbidden-doctype": _r("an XML document with a DOCTYPE", BAD),
    "forbidden-xinclude": _r("an XML document with an XInclude element", BAD),
    "forbidden-schema-location": _r("a schema location hint that leads elsewhere", BAD),
    "schema-invalid": _r("a document that its schema or directory refuses (line, path)", BAD),
    "schema-unavailable": _r("a schema that cannot be loaded from schemas/ alone", BAD),
    "invalid-content": _r(
        "values a message cannot hold (NCTS), or a message that cannot be written as XML", BAD
    ),
    "unsupported-document": _r("a document of a kind its format does not translate", BAD),
    "unsupported-format": _r("no such format, or none recognises the document", BAD),
    "unsupported-direction": _r("a decode-only format asked to encode, or the reverse", BAD),
    "translation-failed": _r(
        "a translator raised something other than a TranslationError (logged), or the "
        "translation process ended twice on the document",
        BAD,
    ),
    "translation-timeout": _r(
        "a document took longer than 60 s in the translation process, which is ended", BAD
    ),
    "edifact-syntax": _r("EDIFACT service segments, separators or control counts", BAD),
    "edifact-structure": _r("EDIFACT segment order, groups, repetitions or lengths", BAD),
    "edifact-code": _r(
        "an EDIFACT code not in its D.96B list, or not in the closed code list registered for "
        "its agency",
        BAD,
    ),
    "csv-header-invalid": _r("an AEO CSV file whose header is not the expected one", BAD),
    "csv-row-malformed": _r("an AEO CSV row that does not parse", BAD),
    "csv-field-missing": _r("an AEO CSV row without a required field", BAD),
    "csv-field-invalid": _r("an AEO CSV field that breaks its rule (path = the column)", BAD),
    "csv-row-duplicate": _r("an AEO CSV row repeating an earlier one's operator", BAD),
    # --- drop folders -----------------------------------------------------------------------
    "file-linked": _r("a file in inbox/ with more than one link: not read", BAD),
    "file-name": _r("a file that could not be moved under its own name", BAD),
    "folder-unsafe": _r(
        "a level below a drop folder's path is a link or not a directory: never followed; "
        "at start, the start fails",
        PRECONDITION,
    ),
    # --- the store, the hub's own faults, shutting down --------------------------------------
    "store-unavailable": _r("the store cannot be reached or written now: retry", UNAVAILABLE),
    "store-busy": _r("the database stayed locked by another process too long: retry", UNAVAILABLE),
    "store-data-refused": _r(
        "the store refused one caller's data (a constraint it breaks): not worth retrying; "
        "the others in the same group commit are written",
        INTERNAL,
    ),
    "schema-mismatch": _r(
        "the database's schema revision is not this release's (behind: `customs-hub db "
        "upgrade`; ahead: a newer release wrote it), or its tables are not a known revision",
        PRECONDITION,
    ),
    "hub-running": _r(
        "another process holds this hub's store (a hub serving it, or an operator's `db "
        "upgrade` or `restore`): one instance at a time",
        PRECONDITION,
    ),
    "trail-inconsistent": _r(
        "the stored trail is not consistent with the last signed checkpoint: none is signed",
        UNAVAILABLE,
    ),
    "shutting-down": _r("the hub is stopping: retry with another call", UNAVAILABLE),
    "partner-unavailable": _r("a partner's hub did not answer (delivery, retried)", UNAVAILABLE),
    "receipt-malformed": _r("a receipt that does not parse", UNAUTHENTICATED),
    "receipt-mismatch": _r(
        "a partner's receipt naming other envelope bytes than those sent (recorded with the "
        "failed attempt; the message is sent again)",
        UNAVAILABLE,
    ),
    "receipt-signature-invalid": _r(
        "a receipt whose signature or batch proof does not verify", UNAUTHENTICATED
    ),
    "receipt-untrusted": _r(
        "a receipt not signed by a key trusted for its receiver, or naming another receiver",
        UNAUTHENTICATED,
    ),
    "illegal-transition": _r(
        "a change of an outbound message's status its state machine does not allow "
        "(hub/core/outbox.py): the transaction is not committed",
        INTERNAL,
    ),
    "internal": _r("a fault of the hub's own (logged); on Exchange, the stream ends", INTERNAL),
    # --- the audit service ------------------------------------------------------------------
    "token-missing": _r("no bearer token", UNAUTHENTICATED),
    "token-malformed": _r("a token that is not a JWT", UNAUTHENTICATED),
    "token-too-large": _r("a token over 8 KiB", UNAUTHENTICATED),
    "token-algorithm": _r("a token signed with another algorithm than EdDSA", UNAUTHENTICATED),
    "token-signature": _r("a token whose signature does not verify", UNAUTHENTICATED),
    "token-expired": _r("a token past its exp", UNAUTHENTICATED),
    "token-not-yet-valid": _r("a token before its nbf or iat", UNAUTHENTICATED),
    "token-wrong-audience": _r("a token for another hub", UNAUTHENTICATED),
    "token-wrong-issuer": _r("a token from another issuer", UNAUTHENTICATED),
    "token-revoked": _r("a token whose jti is on audit.revoked_tokens", UNAUTHENTICATED),
    "scope-missing": _r("a token without the method's scope", DENIED),
    "partner-not-allowed": _r("a query about a partner the token does not cover", DENIED),
    "audit-request-invalid": _r("an audit query that breaks its rules", BAD),
    "page-token-invalid": _r("a page token this hub did not give", BAD),
    "checkpoint-not-found": _r("no signed checkpoint of that size", NOT_FOUND),
    "entry-not-found": _r("no trail entry at that index", NOT_FOUND),
    "message-not-found": _r("no message with that id", NOT_FOUND),
    "not-found": _r("nothing found for the query", NOT_FOUND),
    "not-yet-checkpointed": _r(
        "the entry or tree size is past the latest signed checkpoint", PRECONDITION
    ),
    # --- start, configuration and the command line -------------------------------------------
    "config-missing": _r("no configuration file", PRECONDITION),
    "config-invalid": _r(
        "a configuration, key or certificate that is not valid or does not belong with the others",
        PRECONDITION,
    ),
    "format-plugin-invalid": _r("a format plugin registered under an id not its own", PRECONDITION),
    "code-list-invalid": _r(
        "a shipped or plugin code list that cannot be loaded, or is not valid", PRECONDITION
    ),
    "listen-failed": _r("a listening address in use or not available", PRECONDITION),
    "key-invalid": _r("`trail verify --key`: a verifier key that does not parse", INTERNAL),
    "export-invalid": _r(
        "`trail verify`: an export folder that is incomplete or not readable, or a verifier "
        "key file that cannot be read",
        INTERNAL,
    ),
    "reload-failed": _r(
        "`customs-hub reload`: no hub serves that configuration here, or the hub refused the "
        "new one (the reason given; it goes on with the one it has), or did not answer",
        PRECONDITION,
    ),
    "registry-cli": _r(
        "`customs-hub registry query|sync`: the running hub cannot be reached, or refused (its "
        "reason given)",
        PRECONDITION,
    ),
    "audit-cli": _r("`customs-hub audit` could not do what it was asked", INTERNAL),
    "evidence-invalid": _r(
        "`customs-hub evidence export` or `verify`: no stored message, envelope, leaf or signed "
        "checkpoint to export, no certificate to put in the bundle, a bundle that would not "
        "verify (not written), or a bundle file that cannot be read",
        INTERNAL,
    ),
    "translate-refused": _r("`customs-hub translate` could not do what it was asked", INTERNAL),
    "backup-failed": _r(
        "`customs-hub backup` or `restore`: SQLite, pg_dump or pg_restore failed, or the "
        "PostgreSQL tool is missing or older than the server",
        INTERNAL,
    ),
    "backup-refused": _r(
        "`customs-hub backup` or `restore`: a backup of another hub or kind of store, a target "
        "that exists (without --force) or is a link, or a hub running on the store",
        INTERNAL,
    ),
    "backup-invalid": _r(
        "`customs-hub restore`: a file that is not a whole customs-hub backup, or whose data "
        "does not match its manifest's SHA-256 or trail",
        INTERNAL,
    ),
}


def markdown() -> str:
    """The registry as the table in docs/adr/0002-status-codes.md."""
    rows = ["| reason | status | when |", "|---|---|---|"]
    for reason, entry in REASONS.items():
        statuses = " or ".join(s.name for s in entry.statuses)
        rows.append(f"| `{reason}` | {statuses} | {entry.when} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(markdown(), end="")
