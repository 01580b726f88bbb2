"""The shell step: run a command in the runner function; output ``{exit_code, stdout, stderr}``.

The command is a list of arguments: the engine splits a definition's command line into
arguments before it renders their ``${...}`` (so a value never becomes several arguments), and
``ctx.shell`` splits a string when the code calls it. No shell runs it (no pipes, globs,
variables or ``;``: write a script and run it for those). It runs in the runner Lambda: at most
its timeout (and the function's, 15 minutes at most), a writable /tmp only, no root, the
runner's IAM role and network. stdout and stderr are kept up to 64 KB each. A non-zero exit
fails the attempt with ``ShellCommandFailed`` (retried like any failure).
"""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Mapping
from typing import Any, ClassVar

from stepwell.runtime.step_context import StepContext

OUTPUT_LIMIT = 64 * 1024


class ShellCommandFailed(RuntimeError):
    """The command exited with a non-zero status."""


class ShellTimeout(TimeoutError):
    """The command did not finish within its timeout."""


class ShellCommandInvalid(ValueError):
    """The command is empty or cannot be found."""

    retryable: ClassVar[bool] = False


ERROR_NAMES = ("ShellCommandFailed", "ShellTimeout", "ShellCommandInvalid")
"""The error names a shell step fails with."""


def _tail(data: bytes) -> str:
    text = data.decode(errors="replace")
    return text if len(text) <= OUTPUT_LIMIT else "…" + text[-OUTPUT_LIMIT:]


def run(params: Mapping[str, Any], ctx: StepContext) -> dict[str, Any]:
    """Run ``params["command"]`` with ``params["timeout_s"]`` (60 s when unset)."""
    command = params.get("command")
    if isinstance(command, str):
        # Attempts recorded before the engine split commands into arguments carry the line.
        try:
            argv = shlex.split(command)
        except ValueError as exc:
            raise ShellCommandInvalid(
                f"step '{ctx.step_id}': the command cannot be split into arguments ({exc})"
            ) from None
    else:
        argv = [str(a) for a in command or []]
    if not argv:
        raise ShellCommandInvalid(f"step '{ctx.step_id}': the command is empty")
    timeout = float(params.get("timeout_s") or 60)
    try:
        done = subprocess.run(argv, capture_output=True, timeout=timeout, check=False, cwd="/tmp")
    except FileNotFoundError:
        raise ShellCommandInvalid(
            f"step '{ctx.step_id}': {argv[0]!r} is not installed in the runner function"
        ) from None
    except subprocess.TimeoutExpired:
        raise ShellTimeout(f"step '{ctx.step_id}': {argv[0]} ran over {timeout:g}s") from None
    stdout, stderr = _tail(done.stdout), _tail(done.stderr)
    if done.returncode != 0:
        last = stderr.strip().splitlines()[-1:] or [""]
        raise ShellCommandFailed(f"{argv[0]} exited with {done.returncode}: {last[0][:500]}")
    return {"exit_code": done.returncode, "stdout": stdout, "stderr": stderr}
