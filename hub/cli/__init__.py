"""The ``customs-hub`` command line: main (the commands), audit, translate, trail files, pki,
demo and plain-text tables."""

import os

# gRPC's C core writes its own lines to standard error (absl's format, not the hub's text or
# JSON), read from GRPC_VERBOSITY when grpc is first imported, which is after this. The hub
# reports what matters of them itself (a port it cannot bind: listen-failed), so by default
# they are silenced; an operator who wants them sets GRPC_VERBOSITY (ERROR, INFO, DEBUG),
# and that is kept (docs/telemetry.md).
os.environ.setdefault("GRPC_VERBOSITY", "NONE")
