"""The admin CLI run in this process through ``main(argv)``, as ``python -m gateway.admin`` runs it.

A process costs seconds of interpreter start and imports per command on a loaded machine; the
commands' behaviour is the same in this process. A few tests per file still run the real
``python -m gateway.admin`` to guard the entry point and its exit codes.
"""

from __future__ import annotations

import io
import os
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, redirect_stderr, redirect_stdout

from gateway.admin.cli import main


@contextmanager
def _environment(changes: Mapping[str, str | None]) -> Iterator[None]:
    """``os.environ`` with ``changes`` (None: unset) for the block, as it was afterwards."""
    before = {name: os.environ.get(name) for name in changes}
    try:
        for name, value in changes.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def run_admin(*arguments: str, env: Mapping[str, str | None]) -> subprocess.CompletedProcess[str]:
    """``main(arguments)`` with ``env``'s variables set (None: unset); its exit code and output.

    Shaped as the ``subprocess.run`` of ``python -m gateway.admin <arguments>``: ``returncode``
    is what the process would exit with (``SystemExit``'s code included: argparse's 2, a
    message's 1), ``stdout`` and ``stderr`` what it would have printed.
    """
    stdout, stderr = io.StringIO(), io.StringIO()
    with _environment(env), redirect_stdout(stdout), redirect_stderr(stderr):
        try:
            code = main(list(arguments))
        except SystemExit as exit_:
            if exit_.code is None or isinstance(exit_.code, int):
                code = exit_.code or 0
            else:  # as the interpreter does: the message on standard error, exit status 1
                print(exit_.code, file=stderr)
                code = 1
    return subprocess.CompletedProcess(
        ["python", "-m", "gateway.admin", *arguments], code, stdout.getvalue(), stderr.getvalue()
    )
