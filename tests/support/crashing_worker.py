"""`tasksage worker`, except that decoding a record that carries MARK kills the process at once
(os._exit: no exception, no cleanup), as a record that crashes a parser's C code would.

Run as `python -m tests.support.crashing_worker`, configured by the environment like the real one.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

from processors.contracts import inputs

MARK = b"KILLS-THE-WORKER"
EXIT_CODE = 70


def _crashing(decode: Callable[[bytes, int], Any]) -> Callable[[bytes, int], Any]:
    def decode_or_die(payload: bytes, max_bytes: int) -> Any:
        if MARK in payload:
            sys.stderr.write(f"crashing_worker: dying on a marked record ({len(payload)} bytes)\n")
            sys.stderr.flush()
            os._exit(EXIT_CODE)
        return decode(payload, max_bytes)

    return decode_or_die


def main() -> None:
    for name, decode in list(inputs.DECODERS.items()):
        inputs.DECODERS[name] = _crashing(decode)
    from streams.commands.cli import main as cli

    sys.argv = ["tasksage", "worker"]
    cli()


if __name__ == "__main__":
    main()
