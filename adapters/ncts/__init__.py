"""EU NCTS phase 6 (transit) control messages, read into the hub's ``ControlResult``.

The format ``ncts-p6`` decodes CC029C (release for transit), CC060C (control decision
notification) and CC044C (unloading remarks), validated against HMRC's copies of the XSD
60.4.16 schemas in schemas/ncts. docs/formats/ncts-p6.md describes the mapping.

What it must never do: load a schema from anywhere but schemas/ncts, use the network, or raise
anything but TranslationError for a document.
"""

from __future__ import annotations

from adapters.ncts.translator import NctsP6
from hub.core.limits import XmlLimits

__all__ = ["NctsP6", "ncts_p6"]


def ncts_p6(limits: XmlLimits) -> NctsP6:
    """The ``customs_hub.formats`` entry point factory of the ``ncts-p6`` format."""
    return NctsP6(limits)
