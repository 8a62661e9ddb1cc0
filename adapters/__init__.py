"""Format translators and domestic connectors (WCO DM XML, EDIFACT, CSV, JSON, drop folder).

Each translator will sit behind one small interface and be registered by name (issues 3 and
6). The hub core never imports from here; adapters import the hub's protobuf messages.
"""
