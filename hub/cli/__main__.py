"""``python -m hub.cli``: the same as the ``customs-hub`` command."""

import contextlib
import sys

from hub.cli.main import main

with contextlib.suppress(BrokenPipeError):
    sys.exit(main())
