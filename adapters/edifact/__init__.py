"""UN/EDIFACT (D.96B) for the hub: CUSRES to and from ``Response`` / ``ControlResult``, CUSDEC
to ``GoodsDeclaration``. ``edifact`` is the format factory the registry calls
(adapters/formats.py); the translator itself is ``translator.Edifact``.

What this package must never do: raise anything but TranslationError for any input, or load
its directory from anywhere but schemas/edifact.
"""

from __future__ import annotations

from adapters.edifact.codelists import available
from adapters.edifact.translator import Edifact
from hub.core.limits import XmlLimits


def edifact(limits: XmlLimits) -> Edifact:
    """The ``edifact`` translator, bounded by the hub's document size limit, with the shipped
    and plugins' code lists (a hub's own are added by ``Edifact.with_code_lists``)."""
    return Edifact(max_bytes=limits.max_bytes, code_lists=available())


__all__ = ["Edifact", "edifact"]
