"""Runs the runtime as a child process with Lambda's environment, and keeps it running.

The child gets the variables a custom runtime reads (docs/runtime-api.md §2). If it dies, what it
was running fails with ``Runtime.ExitError`` and it is started again (with a growing delay
while it keeps dying at once, e.g. after an init error). After a timeout Lambda recycles the
environment: ``recycle()`` kills the child, and it is started again straight away. Its
stdout and stderr are forwarded line by line to the ``duplexlambda.runtime`` logger.

With a ``ContainerImage`` (``serve --image``) the child is ``docker run`` / ``podman run``
of that image, run as Lambda runs a function's container: ENTRYPOINT + CMD (the handler, if
given, replaces the CMD), a read-only root file system with a writable ``/tmp``, a non-root
user, only Lambda's variables, and the host's network so that it reaches the Runtime API on
127.0.0.1. SIGTERM goes to the container through the engine's signal proxy; a kill (after
the grace period, or a recycle) is sent to the container by its name.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import shlex
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .app import Emulator
from .invocations import Invocation

log = logging.getLogger("duplexlambda.emulator")
runtime_log = logging.getLogger("duplexlambda.runtime")

#: Which fronts' answers the runtime streams (the runtime's setting, docs/fronts-emulator.md):
#: ``serve`` sets it to match ``--front`` unless it is set in its own environment.
STREAMING_ENV = "DUPLEXLAMBDA_STREAMING"
#: Overrides the runtime command (``{handler}`` is replaced, else the handler is appended).
RUNTIME_CMD_ENV = "DUPLEXLAMBDA_RUNTIME_CMD"
#: A runtime that dies sooner than this after its start is restarted with a growing delay.
_QUICK_DEATH = 5.0
_FIRST_DELAY, _MAX_DELAY = 0.5, 10.0
_STOP_GRACE = 3.0
_MAX_LINE = 64 * 1024


def runtime_command(handler: str, override: str | None = None) -> list[str]:
    """The runtime's argv: ``python -m duplexlambda run HANDLER`` unless overridden."""
    template = override if override is not None else os.environ.get(RUNTIME_CMD_ENV)
    if not template:
        return [sys.executable, "-m", "duplexlambda", "run", handler]
    argv = shlex.split(template)
    if any("{handler}" in arg for arg in argv):
        return [arg.replace("{handler}", handler) for arg in argv]
    return [*argv, handler]


def lambda_variables(emulator: Emulator, handler: str, task_root: str) -> dict[str, str]:
    """The variables Lambda sets for a runtime (docs/runtime-api.md §2), and
    ``DUPLEXLAMBDA_STREAMING`` for the front served."""
    config = emulator.config
    stream = f"{time.strftime('%Y/%m/%d')}/[{config.function_version}]{secrets.token_hex(16)}"
    variables = {
        "AWS_LAMBDA_RUNTIME_API": emulator.runtime_api,
        "_HANDLER": handler,
        "LAMBDA_TASK_ROOT": task_root,
        "AWS_LAMBDA_FUNCTION_NAME": config.function_name,
        "AWS_LAMBDA_FUNCTION_VERSION": config.function_version,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(config.memory_size),
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{config.function_name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": stream,
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_REGION": config.region,
        "AWS_DEFAULT_REGION": config.region,
        "PYTHONUNBUFFERED": "1",
    }
    # Classic Lambda does not set it; its mere presence switches awslambdaric to its
    # multi-process (Managed Instances) mode, so it is set only when asked for.
    if config.concurrency > 1:
        variables["AWS_LAMBDA_MAX_CONCURRENCY"] = str(config.concurrency)
    # Not Lambda's, but the function's configuration a deployment behind this front would
    # carry: the runtime streams only to fronts that read a stream (rest-stream: "rest-api";
    # buffered fronts: "none"). A value the user set wins (image mode passes it on too).
    variables[STREAMING_ENV] = os.environ.get(STREAMING_ENV) or config.front_spec.streaming_env
    return variables


#: Variables Lambda sets itself and refuses in a function's configuration ("Reserved keys
#: used in this request"): ``serve --env`` refuses them too.
RESERVED_VARIABLES = frozenset(
    {
        "_HANDLER",
        "_X_AMZN_TRACE_ID",
        "AWS_DEFAULT_REGION",
        "AWS_REGION",
        "AWS_EXECUTION_ENV",
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_INITIALIZATION_TYPE",
        "AWS_LAMBDA_LOG_GROUP_NAME",
        "AWS_LAMBDA_LOG_STREAM_NAME",
        "AWS_ACCESS_KEY",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_LAMBDA_RUNTIME_API",
        "LAMBDA_TASK_ROOT",
        "LAMBDA_RUNTIME_DIR",
    }
)


def lambda_environment(
    emulator: Emulator,
    handler: str,
    task_root: str,
    function_env: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment Lambda gives a runtime (docs/runtime-api.md §2), over ours and the
    function's own variables (``serve --env``)."""
    env = dict(os.environ)
    env.pop("AWS_LAMBDA_MAX_CONCURRENCY", None)
    env.update(function_env or {})
    env.update(lambda_variables(emulator, handler, task_root))
    if function_env and STREAMING_ENV in function_env:
        # Which fronts stream is the function's to say (a SAM template's URL InvokeMode).
        env[STREAMING_ENV] = function_env[STREAMING_ENV]
    # The function's code is importable, as on Lambda (sys.path starts with the task root).
    env["PYTHONPATH"] = os.pathsep.join(p for p in (task_root, env.get("PYTHONPATH")) if p)
    return env


#: Lambda's task root and its sandbox user, in a function's container.
IMAGE_TASK_ROOT = "/var/task"
LAMBDA_USER = "993:993"


@dataclass(frozen=True)
class ContainerImage:
    """``serve --image``: the runtime is this image, run by ``engine`` as Lambda runs it."""

    engine: tuple[str, ...]  #: e.g. ``("docker",)`` or ``("podman",)``
    image: str
    #: replaces the image's CMD (``ImageConfig.Command``); None keeps the CMD
    handler: str | None = None

    def run_argv(self, name: str, variables: Mapping[str, str]) -> list[str]:
        """``ENGINE run`` for one start; each variable's value comes from the engine's own
        environment (``--env NAME``), so none of them shows on a command line."""
        argv = [
            *self.engine, "run", "--rm", "--name", name,
            "--network", "host",  # the Runtime API listens on 127.0.0.1
            "--read-only", "--tmpfs", "/tmp:rw,exec,size=512m,mode=1777",
            "--user", LAMBDA_USER,
        ]  # fmt: skip
        for variable in variables:
            argv += ["--env", variable]
        argv.append(self.image)
        if self.handler is not None:
            argv.append(self.handler)
        return argv

    def kill_argv(self, name: str) -> list[str]:
        """SIGKILL the container ``name`` (``--rm`` then removes it)."""
        return [*self.engine, "kill", "--signal", "KILL", name]


class Supervisor:
    """Starts, watches, restarts and stops the runtime process of one ``Emulator``."""

    def __init__(
        self,
        emulator: Emulator,
        handler: str,
        command: Sequence[str],
        task_root: str,
        *,
        image: ContainerImage | None = None,
        function_env: Mapping[str, str] | None = None,
    ) -> None:
        self._emulator = emulator
        self._function_env = dict(function_env or {})
        self._wake = asyncio.Event()  #: set by ``restart()``: start again without delay
        self._handler = handler
        self._command = list(command)
        self._image = image
        self._task_root = IMAGE_TASK_ROOT if image is not None else os.path.abspath(task_root)
        self._proc: asyncio.subprocess.Process | None = None
        self._task: asyncio.Task[None] | None = None
        self._container: str | None = None  #: the running container's name (image mode)
        self._removals: set[asyncio.Task[None]] = set()
        self._stopping = False
        self._recycling = False
        self.starts = 0  #: how many times the runtime was started
        emulator.on_timeout(self.recycle)

    @property
    def pid(self) -> int | None:
        """The running child's pid, if any."""
        proc = self._proc
        return proc.pid if proc is not None and proc.returncode is None else None

    async def start(self) -> None:
        """Start the runtime (and keep restarting it until ``stop()``)."""
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Terminate the runtime (SIGTERM, then SIGKILL after a grace period) and wait."""
        self._stopping = True
        await self._terminate()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await asyncio.gather(*self._removals, return_exceptions=True)

    def recycle(self, invocation: Invocation | None = None) -> None:
        """Kill the runtime now so that a fresh one starts (after a timeout)."""
        if self.pid is None or self._stopping:
            return
        log.warning("recycling the runtime (pid %d)", self.pid)
        self._recycling = True
        if self._container is not None:
            # Killing the engine's client would leave its container running.
            task = asyncio.get_running_loop().create_task(self._kill_container(self._container))
            self._removals.add(task)
            task.add_done_callback(self._removals.discard)
        else:
            self._signal(signal.SIGKILL)

    async def restart(self, grace: float = _STOP_GRACE) -> None:
        """Start the runtime again now (``serve --reload``): let dispatched invocations finish
        for up to ``grace`` seconds, stop the child and start a new one without the backoff of
        a crashing runtime. Invocations that arrive meanwhile wait for the new one (they are
        not failed with a pending init error: the new code may import)."""
        if self._stopping or self._task is None:
            return
        # From now on invocations wait for the new runtime (released once it has started:
        # it takes them when it polls /next, after its init).
        self._emulator.dispatcher.hold()
        self._emulator.dispatcher.init_error = None
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:  # no event tells when the last one settles
            if not self._emulator.dispatcher.has_pending():
                break
            await asyncio.sleep(0.05)
        if self._stopping:
            self._emulator.dispatcher.release()
            return
        self._wake.set()
        await self._terminate()

    # --- internals ------------------------------------------------------------------------

    async def _run(self) -> None:
        delay = _FIRST_DELAY
        if self._image is not None:
            variables = lambda_variables(self._emulator, self._handler, self._task_root)
            variables = {**self._function_env, **variables}
            env = {**os.environ, **variables}
        else:
            variables = {}
            env = lambda_environment(
                self._emulator, self._handler, self._task_root, self._function_env
            )
        while not self._stopping:
            started = time.monotonic()
            code = await self._run_once(self._argv(variables), env)
            if self._stopping:
                return
            recycled, self._recycling = self._recycling, False
            reloading = self._wake.is_set()
            if reloading:
                log.info("runtime stopped (status %s); starting the new code", code)
            else:
                log.warning("runtime exited with status %s; restarting it", code)
            self._emulator.runtime_exited(f"Runtime exited with error: exit status {code}")
            quick = time.monotonic() - started < _QUICK_DEATH
            if reloading:
                delay = _FIRST_DELAY
            elif recycled or not quick:
                delay = _FIRST_DELAY
                await self._pause(0.05)
            else:
                await self._pause(delay)
                delay = min(delay * 2, _MAX_DELAY)
            self._wake.clear()

    async def _pause(self, seconds: float) -> None:
        """Sleep before a restart, cut short by ``restart()``."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    def _argv(self, variables: Mapping[str, str]) -> list[str]:
        """The command for the next start (in image mode, a container with a new name)."""
        if self._image is None:
            return self._command
        self._container = f"duplexlambda-{os.getpid()}-{self.starts + 1}-{secrets.token_hex(3)}"
        return self._image.run_argv(self._container, variables)

    async def _run_once(self, command: list[str], env: dict[str, str]) -> int | None:
        try:
            self._proc = await asyncio.create_subprocess_exec(
                *command,
                env=env,
                cwd=self._task_root if self._image is None else None,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                # Its own process group: a runtime that forks workers (awslambdaric with
                # AWS_LAMBDA_MAX_CONCURRENCY) is stopped as a whole.
                start_new_session=True,
            )
        except OSError as exc:
            log.error("cannot start the runtime %s: %s", shlex.join(command), exc)
            return None
        finally:
            self._emulator.dispatcher.release()  # after a restart(): the new runtime's turn
        self.starts += 1
        proc = self._proc
        log.info("runtime started (pid %d): %s", proc.pid, shlex.join(command))
        assert proc.stdout is not None
        assert proc.stderr is not None
        try:
            await asyncio.gather(
                self._forward(proc.stdout), self._forward(proc.stderr), proc.wait()
            )
        finally:
            if proc.returncode is None:  # cancelled: do not leave it behind
                await self._kill()
        return proc.returncode

    async def _forward(self, stream: asyncio.StreamReader) -> None:
        pending = b""
        while chunk := await stream.read(65536):
            self._emulator.hub.log_tail.append(chunk)
            pending += chunk
            *lines, pending = pending.split(b"\n")
            if len(pending) > _MAX_LINE:
                lines.append(pending)
                pending = b""
            for line in lines:
                runtime_log.info("%s", line.rstrip(b"\r").decode("utf-8", "replace"))
        if pending:
            runtime_log.info("%s", pending.decode("utf-8", "replace"))

    def _signal(self, sig: signal.Signals, *, group_only: bool = False) -> None:
        proc = self._proc
        if proc is None or (proc.returncode is not None and not group_only):
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)  # the group we created for this child, by its id

    async def _terminate(self) -> None:
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return
        self._signal(signal.SIGTERM)  # an engine's client passes it on to its container
        try:
            await asyncio.wait_for(proc.wait(), _STOP_GRACE)
        except TimeoutError:
            await self._kill()
        # Workers it forked share its group: make sure none outlives it (its group, even if
        # a new runtime has started meanwhile, after a restart()).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)

    async def _kill(self) -> None:
        """SIGKILL the runtime (its container, in image mode) and wait for it."""
        proc = self._proc
        if proc is None:
            return
        if self._container is not None:
            await self._kill_container(self._container)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(proc.wait()), _STOP_GRACE)
        self._signal(signal.SIGKILL)
        await proc.wait()

    async def _kill_container(self, name: str) -> None:
        """``ENGINE kill --signal KILL NAME`` (image mode)."""
        assert self._image is not None
        argv = self._image.kill_argv(name)
        try:
            killer = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
            _, err = await killer.communicate()
        except OSError as exc:
            log.error("cannot kill the container %s: %s", name, exc)
            return
        if killer.returncode != 0:
            log.warning("%s: %s", shlex.join(argv), err.decode("utf-8", "replace").strip())
