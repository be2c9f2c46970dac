"""The container image: its size, and the cold start inside the container.

Run as ``python -m benchmarks.image [--quick] [--image IMAGE]`` after ``bash .ci/image``
(podman; the image is ``localhost/duplexlambda-examples:ci``). It prints its tables in the
suite's format; it is not part of ``python -m benchmarks all``, which must run where no
container engine is.

Method, and why:

* Size: ``podman image inspect`` (uncompressed, what Lambda's 10 GB limit counts), the
  base image's size (so the layers this project adds are known), and ``podman save``
  piped through gzip (about what a registry stores and Lambda pulls).
* Cold start, process start to first response: one emulator (``serve --no-runtime``); per
  trial an invocation (a 3-row CSV for ``csv_stats.handler``, the image's CMD) is sent
  first and waits in the emulator, then the container starts as Lambda runs it
  (``--read-only``, ``/tmp`` tmpfs, uid 993, host network), its entry point run through
  ``/bin/sh -c 'date +%s.%N; exec python -m duplexlambda run …'``: ``date`` prints the
  wall clock (shared by the host and the container) just before the runtime's ``exec``.
  The clock stops when the response's status line arrives at the client. So the time
  covers the interpreter, every import, loading the handler, connecting, ``/next``, the
  invocation and its first bytes: what Lambda bills as init plus the first response.
  The engine's own start (``podman run`` to that ``exec``: runc, mounts) is reported
  apart: on Lambda that part is Lambda's, not the image's.
* Against: the same command straight on the host (this machine's Python and venv, no
  container), started the same way. One untimed run of each first (page cache warm, as
  on a Lambda host after the first start), then the trials alternate the two.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import re
import secrets
import shutil
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .common import (
    PY,
    REPO,
    BenchmarkError,
    EmulatorProc,
    Procs,
    Section,
    Table,
    fmt,
    machine_info,
    median,
    pct,
    progress,
    start_emulator,
)
from .report import section_markdown

IMAGE = os.environ.get("DUPLEXLAMBDA_IMAGE", "localhost/duplexlambda-examples:ci")
HANDLER = "csv_stats.handler"
BODY = b"city,temp\na,1\nb,2\nc,3\n"
#: ``date`` prints the wall clock, then the runtime replaces the shell (same process).
STAMP = 'date +%s.%N; exec "$@"'
RUNTIME = ["python", "-m", "duplexlambda", "run", HANDLER]


@dataclass(frozen=True)
class Plan:
    name: str
    trials: int


FULL = Plan("full", trials=15)
QUICK = Plan("quick", trials=3)


def engine_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("CONTAINERS_CONF", str(REPO / ".ci" / "containers.conf"))
    return env


def podman(*args: str, timeout: float = 120) -> str:
    result = subprocess.run(
        ["podman", *args], capture_output=True, text=True, timeout=timeout, env=engine_env(),
        stdin=subprocess.DEVNULL, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise BenchmarkError(f"podman {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout.strip()


def lambda_variables(runtime_api: str) -> dict[str, str]:
    return {
        "AWS_LAMBDA_RUNTIME_API": runtime_api,
        "_HANDLER": HANDLER,
        "LAMBDA_TASK_ROOT": "/var/task",
        "AWS_LAMBDA_FUNCTION_NAME": "function",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/function",
        "AWS_LAMBDA_LOG_STREAM_NAME": "bench",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
    }


# --------------------------------------------------------------------------- size


def sizes(image: str) -> dict[str, float]:
    """Bytes: the image, its base (the first layer's image), ours above it, and gzipped."""
    size = int(podman("image", "inspect", "--format", "{{.Size}}", image))
    layers = podman("image", "inspect", "--format", "{{json .RootFS.Layers}}", image)
    base = _base_size(image, layers)
    proc = subprocess.Popen(
        ["podman", "image", "save", "--format", "docker-archive", image],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=engine_env(),
    )  # fmt: skip
    assert proc.stdout is not None
    compressed = 0
    compressor = zlib.compressobj(6, zlib.DEFLATED, 31)  # 31: the gzip format
    while data := proc.stdout.read(1 << 20):
        compressed += len(compressor.compress(data))
    compressed += len(compressor.flush())
    if proc.wait() != 0:
        raise BenchmarkError(f"podman image save {image} failed")
    return {"image": size, "base": base, "ours": size - base, "gzip": compressed}


def _base_size(image: str, layers: str) -> float:
    """The size of the image whose layers are this one's first (its FROM), if here."""
    first = re.findall(r"sha256:[0-9a-f]+", layers)[:1]
    for line in podman("image", "ls", "--format", "{{.ID}} {{.Size}}", "--no-trunc").splitlines():
        image_id, *_ = line.split()
        ids = podman("image", "inspect", "--format", "{{json .RootFS.Layers}}", image_id)
        if re.findall(r"sha256:[0-9a-f]+", ids) == first:
            return float(podman("image", "inspect", "--format", "{{.Size}}", image_id))
    return float("nan")


# --------------------------------------------------------------------------- cold start


def _first_response(url_host: str, port: int, sent: threading.Event, out: list[float]) -> None:
    conn = http.client.HTTPConnection(url_host, port, timeout=120)
    try:
        conn.request("POST", "/?group=city&value=temp", body=BODY)
        sent.set()
        response = conn.getresponse()
        out.append(time.time())  # the status line: the first response
        body = response.read()
        out.append(time.time())
        if response.status != 200 or b'"total"' not in body:
            raise BenchmarkError(f"bad response {response.status}: {body[:200]!r}")
    finally:
        sent.set()
        conn.close()


def cold_start(
    procs: Procs,
    emulator: EmulatorProc,
    argv: list[str],
    env: dict[str, str],
    cwd: Path | None = None,
) -> dict[str, float]:
    """One cold start: seconds from ``argv`` started to its runtime's exec (``engine``),
    from that exec to the first response (``cold``) and to the last byte (``done``)."""
    sent = threading.Event()
    times: list[float] = []
    client = threading.Thread(
        target=_first_response, args=(emulator.host, emulator.port, sent, times)
    )
    client.start()
    sent.wait(30)
    time.sleep(0.05)  # the request is in the emulator's queue before the runtime starts
    started = time.time()
    child = procs.spawn("runtime", argv, env=env, cwd=cwd)
    try:
        client.join(120)
        if len(times) < 2:
            raise BenchmarkError(f"no response from {argv}:\n{child.output()}")
        stamp = re.search(r"^(\d+\.\d+)$", child.output(), re.MULTILINE)
        if stamp is None:
            raise BenchmarkError(f"no start stamp from {argv}:\n{child.output()}")
        execed = float(stamp[1])
    finally:
        procs.stop(child)
    return {"engine": execed - started, "cold": times[0] - execed, "done": times[1] - execed}


def container_argv(image: str, runtime_api: str, name: str) -> list[str]:
    argv = [
        "podman", "run", "--rm", "--name", name, "--network", "host", "--read-only",
        "--tmpfs", "/tmp:rw,exec,size=512m,mode=1777", "--user", "993:993",
        "--entrypoint", "/bin/sh",
    ]  # fmt: skip
    for key, value in lambda_variables(runtime_api).items():
        argv += ["--env", f"{key}={value}"]
    return [*argv, image, "-c", STAMP, "sh", *RUNTIME]


def run(quick: bool = False, image: str = IMAGE) -> Section:
    plan = QUICK if quick else FULL
    started = time.monotonic()
    if shutil.which("podman") is None:
        raise BenchmarkError("podman is not installed (bash .ci/image installs it)")
    podman("image", "exists", image)
    progress(f"image: sizes of {image}")
    size = sizes(image)
    host_argv = ["/bin/sh", "-c", STAMP, "sh", PY, *RUNTIME[1:]]
    results: dict[str, list[dict[str, float]]] = {"container": [], "host": []}
    with Procs() as procs:
        emulator = start_emulator(procs, "image")
        host_env = {**engine_env(), **lambda_variables(emulator.runtime_api)}
        host_env["LAMBDA_TASK_ROOT"] = str(REPO / "examples")

        def one(where: str) -> dict[str, float]:
            if where == "container":
                name = f"duplexlambda-bench-{os.getpid()}-{secrets.token_hex(3)}"
                argv = container_argv(image, emulator.runtime_api, name)
                try:
                    return cold_start(procs, emulator, argv, engine_env())
                finally:
                    with contextlib.suppress(BenchmarkError):
                        podman("rm", "--force", "--time", "0", name)
            return cold_start(procs, emulator, host_argv, host_env, REPO / "examples")

        one("container")  # untimed: page cache warm
        one("host")
        for trial in range(plan.trials):
            progress(f"image: cold start {trial + 1}/{plan.trials}")
            for where in ("container", "host"):
                results[where].append(one(where))

    section = Section(
        name="image",
        title="Container image (benchmarks/image.py)",
        method=(
            "Size from podman (uncompressed; gzip of `podman save` for the registry's view). "
            "Cold start: wall clock from the runtime's exec (a `date` just before it, inside "
            "the container) to the first response's status line at the client, the invocation "
            f"waiting in the emulator; csv_stats.handler, {plan.trials} trials, medians."
        ),
    )
    mib = 1024**2
    section.tables.append(
        Table(
            f"Size of {image}",
            ["", "MiB"],
            [
                ["image (uncompressed)", fmt(size["image"] / mib, 1)],
                ["its base (debootstrap bookworm + python3)", fmt(size["base"] / mib, 1)],
                ["our layers (duplexlambda, deps, examples, .pyc)", fmt(size["ours"] / mib, 1)],
                ["gzip of `podman save` (about what is pushed)", fmt(size["gzip"] / mib, 1)],
            ],
        )
    )
    rows = []
    for where, label in (("container", "in the container (read-only, uid 993)"),
                         ("host", "on the host (no container)")):  # fmt: skip
        runs = results[where]
        cold = [r["cold"] * 1000 for r in runs]
        done = [r["done"] * 1000 for r in runs]
        engine = [r["engine"] * 1000 for r in runs]
        rows.append([
            label, fmt(median(cold), 1), fmt(pct(cold, 90), 1), fmt(median(done), 1),
            fmt(median(engine), 1) if where == "container" else "-",
        ])  # fmt: skip
    section.tables.append(
        Table(
            "Cold start, ms: runtime process start to first response",
            ["where", "median", "p90", "to last byte", "engine start before it"],
            rows,
        )
    )
    section.data = {"plan": plan.name, "image": image, "size": size, "runs": results}
    section.notes.append(
        "The image runs Debian's Python 3.11.2 (the debootstrap base); the host column runs "
        f"this machine's Python {sys.version.split()[0]}. The engine column is podman + runc "
        "creating the container here, which Lambda does its own way."
    )
    section.seconds = time.monotonic() - started
    return section


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.image", description=__doc__)
    parser.add_argument("--quick", action="store_true", help=f"{QUICK.trials} trials")
    parser.add_argument("--image", default=IMAGE, help=f"the image ({IMAGE})")
    args = parser.parse_args(argv)
    machine = machine_info()
    print("machine: " + ", ".join(f"{k} {v}" for k, v in machine.items()), file=sys.stderr)
    try:
        section = run(args.quick, args.image)
    except BenchmarkError as exc:
        print(f"benchmarks.image: {exc}", file=sys.stderr)
        return 1
    print(section_markdown(section), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
