"""Time to first byte of small writes: 16 bytes every 10 ms, timestamped at the client.

Run as ``python -m benchmarks ttfb [--quick]``.

Method, and why:

* ``GET /ticks`` through the emulator's function URL. The handler opens the stream, then
  every 10 ms writes 16 bytes: the write's scheduled time and the time it actually called
  ``write`` (``time.monotonic()``, CLOCK_MONOTONIC, which every process on a Linux machine
  shares, so the client can subtract them from its own readings).
* The client (this process, a blocking socket) stamps each ``recv`` as it returns and parses
  the chunk framing itself, so that it sees chunk boundaries exactly (the C decoder may join
  adjacent small chunks into one piece, which is right for a body but not for this count).
* Lag = arrival - scheduled write time (what the issue asks for: it includes the handler's
  timer lateness); transit = arrival - the moment the handler called write; lateness =
  write call - schedule (the event loop's timer; uvloop's has 1 ms granularity).
* "Merged": a chunk of more than 16 bytes (two writes framed as one) or a chunk that
  arrived in the same ``recv`` as the one before it (two writes delivered as one). The target
  is zero of both.
* duplexlambda (``asyncio.sleep`` on uvloop) and the floor (``time.sleep`` then ``sendall``)
  alternate, each over its own emulator.
"""

from __future__ import annotations

import struct
import time
from dataclasses import dataclass, field

from .common import (
    CHECK_TIMEOUT,
    IO_TIMEOUT,
    BenchmarkError,
    HttpClient,
    Procs,
    Section,
    Table,
    Target,
    check,
    fmt,
    pct,
    progress,
    request_bytes,
)
from .streaming import STREAMERS, Stack, start_stacks

TICK = 16
INTERVAL_US = 10_000


@dataclass(frozen=True)
class Plan:
    name: str
    ticks: int
    rounds: int


FULL = Plan("full", ticks=1000, rounds=3)
QUICK = Plan("quick", ticks=40, rounds=1)


@dataclass
class Ticks:
    lag: list[float] = field(default_factory=list)  # arrival - scheduled, seconds
    transit: list[float] = field(default_factory=list)  # arrival - write call
    lateness: list[float] = field(default_factory=list)  # write call - scheduled
    merged_framing: int = 0
    merged_reads: int = 0
    count: int = 0


def parse_chunks(buf: bytearray) -> list[bytes]:
    """Complete chunks at the front of ``buf`` (removed from it); stops at the last one."""
    out = []
    while True:
        eol = buf.find(b"\r\n")
        if eol < 0:
            break
        size = int(bytes(buf[:eol]).split(b";")[0], 16)
        if size == 0:
            out.append(b"")
            del buf[: eol + 2]
            break
        end = eol + 2 + size
        if len(buf) < end + 2:
            break
        out.append(bytes(buf[eol + 2 : end]))
        del buf[: end + 2]
    return out


def watch(stack: Stack, ticks: int, into: Ticks, timeout: float = IO_TIMEOUT) -> None:
    emu = stack.emulator
    label = stack.streamer.label
    with HttpClient(emu.host, emu.port, timeout) as client:
        client.sock.sendall(request_bytes("GET", f"/ticks?n={ticks}&interval_us={INTERVAL_US}"))
        head = client.read_head()
        check(head.status == 200, f"{label}: status {head.status}")
        check(head.headers.get("transfer-encoding") == b"chunked", f"{label}: not chunked")
        buf = bytearray(client._rest)
        arrival = time.monotonic()
        seen, ended = 0, False
        deadline = time.monotonic() + ticks * INTERVAL_US / 1e6 + 30
        while not ended:
            if time.monotonic() > deadline:
                raise BenchmarkError(f"{label}: ticks did not end in time")
            chunks = parse_chunks(buf)
            if not chunks:
                data = client.sock.recv(65536)
                arrival = time.monotonic()
                if not data:
                    raise BenchmarkError(f"{label}: stream cut after {seen} ticks")
                buf += data
                chunks = parse_chunks(buf)
                if len([c for c in chunks if c]) > 1:
                    into.merged_reads += len([c for c in chunks if c]) - 1
            for chunk in chunks:
                if not chunk:
                    ended = True
                    break
                if len(chunk) != TICK:
                    check(len(chunk) % TICK == 0, f"{label}: a {len(chunk)}-byte chunk")
                    into.merged_framing += len(chunk) // TICK - 1
                for off in range(0, len(chunk), TICK):
                    scheduled, written = struct.unpack("<dd", chunk[off : off + TICK])
                    into.lag.append(arrival - scheduled)
                    into.transit.append(arrival - written)
                    into.lateness.append(written - scheduled)
                    seen += 1
        check(seen == ticks, f"{label}: {seen} ticks of {ticks}")
        into.count += seen


def run(quick: bool = False) -> Section:
    plan = QUICK if quick else FULL
    started = time.monotonic()
    results = {s.key: Ticks() for s in STREAMERS}
    with Procs() as procs:
        stacks = start_stacks(procs, "ttfb")
        for stack in stacks:  # warm-up, and a check that the path works at all
            try:
                watch(stack, 3, Ticks(), CHECK_TIMEOUT)
            except TimeoutError:
                state = "running" if stack.runtime.alive() else "exited"
                raise BenchmarkError(
                    f"{stack.streamer.label}: no ticks within {CHECK_TIMEOUT:g} s "
                    f"(runtime {state})\n{stack.runtime.output()}"
                ) from None
        for rnd in range(plan.rounds):
            progress(f"ttfb: round {rnd + 1}/{plan.rounds}")
            for stack in stacks[rnd % 2 :] + stacks[: rnd % 2]:
                watch(stack, plan.ticks, results[stack.streamer.key])
    section = Section(
        name="ttfb",
        title="Time to first byte: 16 B written every 10 ms, timestamped at the client",
        method=(
            f"{plan.rounds} x {plan.ticks} ticks per runtime through the function URL, "
            "interleaved. Lag = client arrival - scheduled write time; transit = arrival - "
            "the handler's write call; lateness = write call - schedule. CLOCK_MONOTONIC is "
            "shared by all processes, so the subtraction is exact to the clock's resolution."
        ),
    )
    rows = []
    data: dict[str, dict[str, float | int | str]] = {}
    for s in STREAMERS:
        t = results[s.key]
        data[s.key] = {
            "label": s.label,
            "ticks": t.count,
            "lag_p50_ms": pct(t.lag, 0.5) * 1e3,
            "lag_p99_ms": pct(t.lag, 0.99) * 1e3,
            "lag_max_ms": max(t.lag) * 1e3,
            "transit_p50_ms": pct(t.transit, 0.5) * 1e3,
            "transit_p99_ms": pct(t.transit, 0.99) * 1e3,
            "transit_max_ms": max(t.transit) * 1e3,
            "lateness_p50_ms": pct(t.lateness, 0.5) * 1e3,
            "lateness_p99_ms": pct(t.lateness, 0.99) * 1e3,
            "merged_framing": t.merged_framing,
            "merged_reads": t.merged_reads,
        }
        rows.append(
            [
                s.label,
                str(t.count),
                fmt(pct(t.lag, 0.5) * 1e3, 3),
                fmt(pct(t.lag, 0.99) * 1e3, 3),
                fmt(max(t.lag) * 1e3, 3),
                fmt(pct(t.transit, 0.5) * 1e3, 3),
                fmt(pct(t.transit, 0.99) * 1e3, 3),
                fmt(pct(t.lateness, 0.99) * 1e3, 3),
                f"{t.merged_framing} / {t.merged_reads}",
            ]
        )
    section.tables.append(
        Table(
            "Lag distribution (ms)",
            ["runtime", "ticks", "lag p50", "lag p99", "lag max", "transit p50",
             "transit p99", "lateness p99", "merged: framing / reads"],
            rows,
        )
    )  # fmt: skip
    d = data["duplexlambda"]
    section.targets += [
        Target(
            "duplexlambda lag p99 <= 1 ms",
            f"{d['lag_p99_ms']:.3f} ms",
            float(d["lag_p99_ms"]) <= 1.0,
            "no-regression",
        ),
        Target(
            "duplexlambda: every write arrives separately",
            f"{d['merged_framing']} merged chunks, {d['merged_reads']} shared reads",
            d["merged_framing"] == 0 and d["merged_reads"] == 0,
            "no-regression",
        ),
    ]
    section.data = {"plan": plan.name, "interval_ms": INTERVAL_US / 1000, "runtimes": data}
    section.data["samples"] = {
        s.key: sorted(round(x * 1e3, 4) for x in results[s.key].lag) for s in STREAMERS
    }
    section.seconds = time.monotonic() - started
    return section
