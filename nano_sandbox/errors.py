"""Error types shared by every layer, and the exit codes the CLI maps them to.

Every error the runtime raises for a user to read derives from :class:`NkError`; its ``str()`` is
the one line printed (and logged) before exiting. Exit codes follow runc: 1 for any runtime error,
except where a verb documents otherwise (``exec`` uses 255 so its failures differ from the exit
codes of the process it runs).
"""

from __future__ import annotations


class NkError(Exception):
    """Base of all user-facing runtime errors.

    Attributes:
        exit_code: process exit status the CLI uses for this error (default 1, as runc).
    """

    exit_code: int = 1


class ConfigError(NkError):
    """A bundle's ``config.json`` (or another OCI JSON document) is malformed or invalid.

    ``str(err)`` is ``"<source>: <json.path>: <what is wrong>"``, e.g.
    ``config.json: linux.resources.memory.limit: expected int, got str``.

    Attributes:
        source: the document's name (``config.json``, ``process.json``, ...).
        path: the JSON path of the field at fault, dotted with ``[i]`` for array items
            (``process.rlimits[2].type``); ``""`` for the document as a whole.
        message: what is wrong and, where possible, what was expected.
    """

    def __init__(self, path: str, message: str, source: str = "config.json") -> None:
        self.source = source
        self.path = path
        self.message = message
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        return f"{self.source}: {where}{self.message}"


class ConfigProblems(NkError):
    """Several semantic problems found in one config; ``problems`` holds each as a ConfigError."""

    def __init__(self, problems: list[ConfigError]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class ContainerNotFound(NkError):
    """No container with this id exists under the state root."""

    def __init__(self, cid: str) -> None:
        super().__init__(f'container "{cid}" does not exist')


class ContainerExists(NkError):
    """``create`` of an id that is already taken."""

    def __init__(self, cid: str) -> None:
        super().__init__(f'container "{cid}" already exists')


class InvalidState(NkError):
    """An operation the OCI lifecycle forbids in the container's current status.

    Example: ``cannot start container "web": container is running (start needs created)``.
    """

    def __init__(self, verb: str, cid: str, status: str, needs: list[str] | tuple[str, ...]) -> None:
        self.verb, self.cid, self.status, self.needs = verb, cid, status, tuple(needs)
        need = " or ".join(needs)
        super().__init__(f'cannot {verb} container "{cid}": container is {status} ({verb} needs {need})')


class InvalidArgument(NkError):
    """A command-line argument is wrong; the message names the argument."""


class HostError(NkError):
    """A kernel or host facility failed; the message names the step, the object and errno text."""
