"""Which partner administrations a submitted message goes to (pure core).

Rules come from the config's ``[routes]`` table, keyed by body type:

* a list of party ids: send to each of them (AEO status shared under MRAs with several
  partners, control results to the administration concerned);
* ``"by-country"``: a declaration goes to the partner administration it names as country of
  destination (465) or exportation (062), whichever is not this hub's own.

An explicit recipient list on the submission overrides the rules but must name partners.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from google.protobuf.message import Message

from hub.core.errors import RoutingError
from hub.core.messages import GoodsDeclaration, declaration_countries

BY_COUNTRY = "by-country"


@dataclass(frozen=True)
class RoutingTable:
    local_party: str
    # partner party id -> country codes that administration covers (usually just its own)
    partner_countries: Mapping[str, Sequence[str]]
    # body type full name -> list of partners, or BY_COUNTRY
    rules: Mapping[str, Sequence[str] | str]
    local_countries: Sequence[str] = ()

    def recipients(self, document: Message, requested: Sequence[str] = ()) -> list[str]:
        body_type = document.DESCRIPTOR.full_name
        if requested:
            unknown = [p for p in requested if p not in self.partner_countries]
            if unknown:
                raise RoutingError(
                    f"{', '.join(unknown)} is not a configured partner of {self.local_party}; "
                    f"partners are {', '.join(sorted(self.partner_countries)) or 'none'}",
                    reason="unknown-partner",
                )
            return list(dict.fromkeys(requested))
        rule = self.rules.get(body_type)
        if rule is None:
            raise RoutingError(
                f"no route is configured for {body_type} and no recipient was given",
                reason="no-route",
            )
        if rule == BY_COUNTRY:
            return self._by_country(document)
        return list(rule)

    def _by_country(self, document: Message) -> list[str]:
        if not isinstance(document, GoodsDeclaration):
            raise RoutingError(
                f"{document.DESCRIPTOR.full_name} cannot be routed by country", reason="no-route"
            )
        own = {self.local_party, *self.local_countries}
        named = [c for c in declaration_countries(document) if c not in own]
        partners = [
            party
            for country in named
            for party, countries in self.partner_countries.items()
            if country in countries
        ]
        if not partners:
            raise RoutingError(
                "the declaration names no partner administration as country of destination or "
                f"exportation (found {', '.join(named) or 'none'} besides {self.local_party})",
                reason="no-route",
            )
        return list(dict.fromkeys(partners))
