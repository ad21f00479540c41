"""Run an attack in a child process under hard limits, so a regression fails.

A security test that builds a decompression bomb or a lying header must not
take the test machine down when the defence regresses: the attack runs in a
fresh Python with ``RLIMIT_AS`` (address space) and a wall-clock timeout, and
the test asserts on what the child printed and how it ended. A SIGSEGV, a
MemoryError past the limit or a timeout is then an ordinary test failure.
"""

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass

# numba/llvmlite and OpenCV reserve address space at import: this is what a
# bare ``import mmfeat`` and its kernels need, measured, plus headroom
BASE_ADDRESS_SPACE_MB = 3072


@dataclass
class Outcome:
    """How the child ended: exit code, output, and its JSON result if any."""

    returncode: int
    stdout: str
    stderr: str
    timed_out: bool
    result: object = None

    @property
    def crashed(self):
        """Killed by a signal (SIGSEGV, SIGABRT, SIGKILL...)."""
        return self.returncode < 0


def run_limited(code, *, memory_mb=512, timeout=60, cwd=None, env=None):
    """Run ``code`` in a child Python limited to ``memory_mb`` above the base.

    The child's last stdout line, if it is JSON, is parsed into
    ``Outcome.result`` (print ``json.dumps(...)`` at the end of ``code``).
    """
    limit = (BASE_ADDRESS_SPACE_MB + memory_mb) * 1024 * 1024
    # a loaded machine (the suite beside a benchmark) runs the child slower;
    # the timeout catches a hang, not a slow start, so it stretches with the
    # load (at most 4x)
    timeout = timeout * min(4.0, max(1.0, os.getloadavg()[0] / (os.cpu_count() or 1)))
    prelude = (
        f"import resource\nresource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))\n"
    )
    child_env = dict(os.environ)
    child_env.setdefault("NUMBA_NUM_THREADS", "2")
    child_env["OMP_NUM_THREADS"] = "1"
    child_env.update(env or {})
    try:
        proc = subprocess.run(
            [sys.executable, "-c", prelude + textwrap.dedent(code)],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=cwd,
            env=child_env,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        return Outcome(-9, exc.stdout or "", exc.stderr or "", True)
    out = Outcome(proc.returncode, proc.stdout, proc.stderr, False)
    lines = proc.stdout.strip().splitlines()
    if lines:
        try:
            out.result = json.loads(lines[-1])
        except ValueError:
            pass
    return out
