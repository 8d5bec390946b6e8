"""``python -m nano_sandbox`` runs the ``nk-runtime`` CLI."""

import sys

from nano_sandbox.cli import main

sys.exit(main())
