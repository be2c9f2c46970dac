"""Running the images that ``bash .ci/image`` builds, as Lambda runs a function's container,
with podman: ENTRYPOINT + CMD (the handler overriding the CMD), a read-only root file
system, ``/tmp`` a writable tmpfs, a non-root user (993, Lambda's), Lambda's variables and
nothing else from ours, and the host's network so the runtime reaches the emulator's
Runtime API on 127.0.0.1.

Without podman or without the image the tests skip and say how to get them; in CI
(``CI=true``) the image must be there, and its absence fails them.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import threading
import time

import pytest

from .lambda_env import ROOT, lambda_env

IMAGE = os.environ.get("DUPLEXLAMBDA_IMAGE", "localhost/duplexlambda-examples:ci")
ASGI_IMAGE = os.environ.get("DUPLEXLAMBDA_ASGI_IMAGE", "localhost/duplexlambda-asgi:ci")
PODMAN = "podman"
LAMBDA_USER = "993:993"
IN_CI = os.environ.get("CI", "").lower() == "true"


def engine_env() -> dict[str, str]:
    """Our environment for podman, with the sandbox settings of .ci/containers.conf
    (runc, cgroupfs, limits it may set) unless CONTAINERS_CONF names others."""
    env = dict(os.environ)
    env.setdefault("CONTAINERS_CONF", str(ROOT / ".ci" / "containers.conf"))
    return env


def podman(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PODMAN, *args], capture_output=True, text=True, timeout=timeout, env=engine_env(),
        stdin=subprocess.DEVNULL, check=False,
    )  # fmt: skip


def require_image(image: str) -> str:
    """``image``, or a skip (a failure in CI) saying why it cannot be run here."""
    if shutil.which(PODMAN) is None:
        why = f"podman is not installed: `bash .ci/image` installs it and builds {image}"
    elif podman("image", "exists", image).returncode != 0:
        why = f"no image {image} in podman: build it with `bash .ci/image`"
    else:
        return image
    if IN_CI:
        pytest.fail(f"CI=true and {why}", pytrace=False)
    pytest.skip(why)


class Container:
    """``podman run`` of ``image`` as Lambda runs it (``--rm``, a fresh name); its output
    is collected line by line. ``stop()`` removes it whatever state it is in."""

    def __init__(
        self,
        image: str,
        runtime_api: str,
        *command: str,
        handler: str | None = None,
        read_only: bool = True,
        user: str | None = LAMBDA_USER,
        entrypoint: str | None = None,
        **extra_env: str,
    ) -> None:
        self.name = f"duplexlambda-test-{os.getpid()}-{secrets.token_hex(4)}"
        env = lambda_env(runtime_api, handler or "csv_stats.handler", ROOT, **extra_env)
        env["LAMBDA_TASK_ROOT"] = "/var/task"
        argv = [PODMAN, "run", "--rm", "--name", self.name, "--network", "host"]
        if read_only:
            argv += ["--read-only", "--tmpfs", "/tmp:rw,exec,size=64m,mode=1777"]
        if user is not None:
            argv += ["--user", user]
        if entrypoint is not None:
            argv += ["--entrypoint", entrypoint]
        for name, value in env.items():
            argv += ["--env", f"{name}={value}"]
        argv += [image, *command]
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, env=engine_env(),
        )  # fmt: skip
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._pump, daemon=True)
        self._reader.start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()

    @property
    def output(self) -> str:
        with self._cond:
            return "\n".join(self.lines)

    def wait_for(self, text: str, timeout: float = 30) -> None:
        """Until a line of its output contains ``text``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not any(text in line for line in self.lines):
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._reader.is_alive()):
                    raise AssertionError(f"{text!r} not in the container's output:\n{self.output}")
                self._cond.wait(min(left, 0.2))

    def kill(self, signal: str) -> None:
        """``podman kill --signal SIGNAL``: to the runtime, the container's process 1."""
        result = podman("kill", "--signal", signal, self.name)
        assert result.returncode == 0, result.stderr

    def wait(self, timeout: float = 30) -> int:
        code = self.proc.wait(timeout=timeout)
        self._reader.join(5)
        return code

    def stop(self) -> None:
        """Remove the container (killed if still running) and reap ``podman run``."""
        if self.proc.poll() is None:
            podman("rm", "--force", "--time", "0", self.name)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._reader.join(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def leftover_containers(prefix: str) -> list[str]:
    """Names of containers (running or not) whose name starts with ``prefix``."""
    result = podman("ps", "--all", "--format", "{{.Names}}", "--filter", f"name=^{prefix}")
    return [name for name in result.stdout.split() if name.startswith(prefix)]
