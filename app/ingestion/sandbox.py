"""What a parsing child may not do, whatever the file it reads asks for.

An audit hook cannot be removed once added, so no library code that runs later (unstructured's model
download, an HTML image, an EPUB's remote stylesheet, an XML external entity) can open a connection,
and no program starts except those named here.
"""

import os
import sys
from collections.abc import Iterable
from typing import Any

_NETWORK_EVENTS = frozenset(
    {"socket.connect", "socket.getaddrinfo", "socket.gethostbyname", "urllib.Request"}
)


class Forbidden(RuntimeError):
    """A parsing child tried to reach the network or start a program."""


def lock_down(*, programs: Iterable[str] = ()) -> None:
    """No network from this process on; subprocesses only of the named programs (by base name)."""
    allowed = frozenset(programs)

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event in _NETWORK_EVENTS:
            raise Forbidden(f"parsing may not use the network ({event})")
        if event == "subprocess.Popen":
            argv = [args[1]] if isinstance(args[1], str | bytes) else list(args[1] or [""])
            program = args[0] or argv[0]
        elif event in ("os.exec", "os.posix_spawn"):
            program = args[0]
        elif event == "os.spawn":
            program = args[1]
        elif event == "os.system":
            program = ""  # a shell: never
        else:
            return
        if os.path.basename(os.fsdecode(program)) not in allowed:
            raise Forbidden(f"parsing may not start {program!r}")

    sys.addaudithook(hook)
