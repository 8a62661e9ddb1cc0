"""The ``customs-hub`` command line: main (the commands), audit, translate, trail files, pki,
demo and plain-text tables."""
