"""CDS inventory-linking movement messages (arrival, departure, consolidation, queries and
their responses), read into and written from the hub's ``MovementEvent``.

The format ``cds-movement`` is described in docs/formats/cds-movement.md.

What it must never do: load a schema from anywhere but schemas/inventory-linking, use the
network, or raise anything but TranslationError for a document.
"""

from __future__ import annotations

from adapters.movement.translator import CdsMovement
from hub.core.limits import XmlLimits

__all__ = ["CdsMovement", "cds_movement"]


def cds_movement(limits: XmlLimits) -> CdsMovement:
    """The ``customs_hub.formats`` entry point factory of the ``cds-movement`` format."""
    return CdsMovement(limits)
