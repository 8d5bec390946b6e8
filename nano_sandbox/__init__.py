"""nano-sandbox: an OCI container runtime written in Python.

The package is laid out in layers that call only downwards (see ../shared/DESIGN.md):
``cli`` → ``lifecycle`` → ``state`` / ``process`` / ``cgroups`` → ``linux``; ``spec`` holds the
OCI configuration model used by all of them.

Importing this package must stay cheap: it is on the start-up path of every ``nk-runtime`` call.
"""

__version__ = "0.1.0"

#: The OCI runtime-spec version this runtime implements (written into state and ``spec``).
OCI_VERSION = "1.3.0"

#: The oldest runtime-spec version whose configs are accepted (``features`` ``ociVersionMin``).
OCI_VERSION_MIN = "1.0.0"
