"""WCO Data Model XML (DEC-DMS declarations, RES-DMS notifications) to and from protobuf."""
