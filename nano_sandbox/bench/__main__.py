"""``python -m nano_sandbox.bench``: see :mod:`nano_sandbox.bench`."""

import sys

from nano_sandbox.bench import run_bench

if __name__ == "__main__":
    sys.exit(run_bench())
