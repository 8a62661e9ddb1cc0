"""Bounds the hub holds documents to, as plain values: the configuration reads them, the
translators apply them (adapters/xmlsafe.py), and nothing here parses anything."""

from __future__ import annotations

from dataclasses import dataclass

# Identifiers the hub stores and indexes: correlation, submission and subscriber ids, body
# types, key ids. 128 holds a UUID, a URN or a WCO reference with room to spare, and keeps
# every index entry small.
ID_CHARS = 128
# Message ids are UUIDs in their 36-character text form; the store's columns hold 64.
MESSAGE_ID_CHARS = 64
# Free text kept with a record is cut to these lengths: a sentence and an identifier or two,
# and a bound on what another party's error text can add to the trail and the tables.
DETAIL_CHARS = 300  # a trail event's detail (docs/trail.md)
ERROR_CHARS = 1000  # an outbox entry's last error or dead-letter reason
REJECTION_CHARS = 1024  # a rejection's detail, as the refused party was told it


@dataclass(frozen=True)
class XmlLimits:
    """What an XML document may be, before it is refused with ``limit-exceeded``."""

    # The largest CDS trade-test declaration is about 60 KB; a declaration at the DEC-DMS
    # maximum of 999 goods items is a few MB. 8 MiB leaves room and bounds parsing time.
    max_bytes: int = 8 * 1024 * 1024
    # DEC-DMS nests 9 levels below MetaData (42A/67A/68A/23A/50A/94A...); 32 is generous and far
    # below libxml2's own 256.
    max_depth: int = 32
    # 999 goods items of ~100 elements each, plus the header: 200,000 bounds memory (~100 MB
    # of lxml nodes at worst).
    max_elements: int = 200_000
