"""``duplexlambda serve`` as a child process, its output collected by reader threads.

One helper for every test that runs the real CLI (emulator, examples, deploy, reliability,
integration)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from typing import IO


class Serve:
    """``python -m duplexlambda serve ARGS``; ``stop()`` ends it (SIGTERM).

    ``env`` is the child's whole environment; by default ours without
    ``AWS_LAMBDA_MAX_CONCURRENCY`` (awslambdaric forks workers when it is set at all).
    """

    def __init__(self, *args: str, cwd: str | None = None, env: dict[str, str] | None = None):
        if env is None:
            env = {k: v for k, v in os.environ.items() if k != "AWS_LAMBDA_MAX_CONCURRENCY"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "duplexlambda", "serve", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=cwd,
            env=env,
        )
        self.out: list[str] = []
        self.err: list[str] = []
        self._cond = threading.Condition()
        assert self.proc.stdout is not None
        assert self.proc.stderr is not None
        self._threads = [
            threading.Thread(target=self._pump, args=(self.proc.stdout, self.out), daemon=True),
            threading.Thread(target=self._pump, args=(self.proc.stderr, self.err), daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _pump(self, stream: IO[str], lines: list[str]) -> None:
        for line in stream:
            with self._cond:
                lines.append(line.rstrip("\n"))
                self._cond.notify_all()

    def wait_for(
        self, pattern: str, lines: list[str], timeout: float = 20.0, after: int = 0
    ) -> re.Match[str]:
        """The first line of ``lines[after:]`` matching ``pattern``, waiting up to ``timeout``."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in lines[after:]:
                    if found := regex.search(line):
                        return found
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._reading()):
                    raise AssertionError(
                        f"{pattern!r} not seen; stdout:\n"
                        + "\n".join(self.out)
                        + "\nstderr:\n"
                        + "\n".join(self.err)
                    )
                self._cond.wait(min(left, 0.2))

    def _reading(self) -> bool:
        return any(thread.is_alive() for thread in self._threads)

    @property
    def url(self) -> str:
        """The function URL from the banner (``http://127.0.0.1:PORT/``)."""
        return self.wait_for(r"Function URL: (http://\S+)", self.out)[1]

    @property
    def front_url(self) -> str:
        """The front's URL from the banner (``serve --front``: the REST API's has its stage)."""
        return self.wait_for(r"(?:Function URL|HTTP API|REST API|ALB):\s+(http://\S+)", self.out)[1]

    @property
    def runtime_api(self) -> str:
        """``AWS_LAMBDA_RUNTIME_API`` from the banner."""
        return self.wait_for(r"AWS_LAMBDA_RUNTIME_API=(\S+)", self.out)[1]

    def stop(self) -> int:
        """SIGTERM, wait (SIGKILL after 20 s), and return the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait(timeout=10)
        for thread in self._threads:
            thread.join(5)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
        return code
