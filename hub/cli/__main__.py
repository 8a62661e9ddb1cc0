"""``python -m hub.cli``: the same as the ``customs-hub`` command."""

from hub.cli.main import main

raise SystemExit(main())  # main ends quietly when a reader closes the pipe
