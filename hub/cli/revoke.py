"""``customs-hub trust revoke`` (a development PKI's CRL) and ``customs-hub token revoke`` (the
auditors' token deny-list). A running hub picks either up within
``limits.revocation_check_seconds``, or at once on ``customs-hub reload``."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from cryptography import x509

from hub.cli.crl import revoke
from hub.config import load_config
from hub.core.errors import ConfigError
from hub.core.trust import check_party_id


def _serial(text: str) -> int:
    """A serial number, decimal or hex (0x...)."""
    try:
        return int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a serial number") from None


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    trust = sub.add_parser("trust", help="revocation in a development PKI").add_subparsers(
        dest="trust_command", required=True
    )
    text = (
        "add a certificate to its CA's revocation list (PKI/PARTY/crl.pem), re-signed with a "
        "new thisUpdate and nextUpdate"
    )
    r = trust.add_parser("revoke", help=text, description=text)
    r.add_argument("--pki", type=Path, required=True, help="the folder `pki init` wrote")
    r.add_argument("--party", required=True, help="whose CA revokes, e.g. NZ")
    which = r.add_mutually_exclusive_group(required=True)
    which.add_argument("--cert", type=Path, help="the certificate to revoke (PEM)")
    which.add_argument("--serial", type=_serial, help="its serial number (decimal or 0x hex)")


def add_token_parser(token: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    text = "add a token's id (jti) to the hub's audit.revoked_tokens deny-list"
    r = token.add_parser("revoke", help=text, description=text)
    r.add_argument("--config", type=Path, required=True, help="the hub's hub.toml")
    r.add_argument("--jti", required=True, help="the token's jti claim")


def revoke_certificate(args: argparse.Namespace) -> int:
    party = check_party_id(args.party)
    serial = args.serial
    if args.cert is not None:
        try:
            cert = x509.load_pem_x509_certificate(args.cert.read_bytes())
        except (OSError, ValueError):
            raise ConfigError(f"{args.cert}: not a readable PEM certificate") from None
        if (
            cert.issuer
            != x509.load_pem_x509_certificate((args.pki / party / "ca.pem").read_bytes()).subject
        ):
            raise ConfigError(
                f"{args.cert} was not issued by {party}'s CA", reason="config-invalid"
            )
        serial = cert.serial_number
    crl = revoke(args.pki, party, [serial])
    print(
        f"{party}: serial {serial:x} revoked; {args.pki / party / 'crl.pem'} lists "
        f"{len(list(crl))}, current until {crl.next_update_utc:%Y-%m-%dT%H:%M:%SZ}"
    )
    return 0


def revoke_token(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    path = config.revoked_tokens
    if path is None:
        raise ConfigError(
            f"{config.path}: [audit] revoked_tokens is not set; name the deny-list file there",
            reason="config-invalid",
        )
    jti = args.jti.strip()
    if not jti or not jti.isprintable() or jti.startswith("#"):
        raise ConfigError("--jti must be a token's id: one printable word", reason="config-invalid")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    with os.fdopen(fd, "a", encoding="utf-8") as f:
        f.write(jti + "\n")
    print(f"token {jti} revoked in {path}")
    return 0
