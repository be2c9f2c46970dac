"""Throughput of duplexlambda's HTTP/1.1 chunked codec against its peers, in one run.

Run from the repo root as ``python benchmarks/codec.py`` or ``python -m benchmarks.codec``;
``--quick`` is a few-second smoke run, ``--json PATH`` also writes the results.

Method, and why:

* Decoding: one chunked body per chunk size is framed here (independently of the codec under
  test) and cut into 64 KiB reads, pre-sliced to ``bytes`` before any timing, as a socket would
  hand them over. Every implementation gets the same reads.
* Consumers drop each decoded piece right away (they only count it), as a streaming handler
  would: keeping a whole body's pieces alive would charge fresh-memory page faults to
  whoever allocates, which is not what a server pays.
* Correctness: before timing, every decoder decodes the body once with a sink that hashes the
  pieces, and must reproduce the payload's length and hash; every timed run must then produce
  the payload's length again. Encoders must reproduce the reference framing byte for byte.
* Baselines: decoding is compared with copying the same reads into one preallocated (so
  cache-hot) 64 KiB bytearray; encoding with ``b"".join`` of the chunks. ``x memcpy`` is the
  baseline's time over the implementation's time on the same input (> 1: faster than copying),
  taken per round and then the median, since the two were timed moments apart.
* Timing: ``time.perf_counter_ns``, garbage collector off during a sample, set-up (parser
  construction, response heads) outside the sample, fast cases looped until a sample lasts
  long enough to time. Competitors are interleaved per size, in rotating order, so that machine
  noise hits all of them alike; the median of the repeats is reported, with its spread.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import hashlib
import importlib.metadata
import json
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, TypeAlias

from duplexlambda.protocol._types import Buffer
from duplexlambda.protocol.chunked import (
    IMPL,
    IMPORT_ERROR,
    CChunkDecoder,
    CChunkEncoder,
    PyChunkDecoder,
    PyChunkEncoder,
)

KiB = 1024
MiB = 1024 * KiB
READ_SIZE = 64 * KiB
CHUNK_SIZES = (16, KiB, 16 * KiB, 64 * KiB, MiB)
RESPONSE_HEAD = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
REQUEST_HEAD = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n"
LAST_CHUNK = b"0\r\n\r\n"

MEMCPY = "memcpy baseline"
C_DECODER = "duplexlambda C"
HTTPTOOLS = "httptools (llhttp)"

Run: TypeAlias = Callable[[], object]


class BenchmarkError(Exception):
    """An implementation produced wrong output or misbehaved: its numbers would mean nothing."""


def check(ok: bool, what: str) -> None:
    """Like ``assert``, but not stripped by ``python -O``: wrong output must never be timed."""
    if not ok:
        raise BenchmarkError(what)


# --------------------------------------------------------------------------- plans


@dataclass(frozen=True)
class Plan:
    """How much work to do: payload bytes per chunk size, repeats, sample length."""

    name: str
    decode_payload: dict[int, int]
    encode_payload: dict[int, int]
    repeats: int
    min_sample_ns: int  # fast cases are looped until one sample lasts at least this long
    max_loops: int


# 8 MiB bodies stay in this class of machine's L3, as reads just copied in by recv() would
# be in cache; a 32 MiB body would make every copying competitor (memcpy included) pay DRAM
# bandwidth that a zero-copy decoder never touches. 16 B chunks get a smaller body because
# the slow peers take microseconds a chunk there.
FULL = Plan(
    name="full",
    decode_payload={16: 2 * MiB, KiB: 8 * MiB, 16 * KiB: 8 * MiB, 64 * KiB: 8 * MiB, MiB: 8 * MiB},
    encode_payload={16: MiB, KiB: 8 * MiB, 16 * KiB: 8 * MiB, 64 * KiB: 8 * MiB, MiB: 8 * MiB},
    repeats=9,
    min_sample_ns=50_000_000,
    max_loops=1000,
)
QUICK = Plan(
    name="quick",
    decode_payload={16: 32 * KiB, KiB: 256 * KiB, 16 * KiB: MiB, 64 * KiB: MiB, MiB: 2 * MiB},
    encode_payload={16: 32 * KiB, KiB: 256 * KiB, 16 * KiB: MiB, 64 * KiB: MiB, MiB: 2 * MiB},
    repeats=3,
    min_sample_ns=1_000_000,
    max_loops=20,
)


# --------------------------------------------------------------------------- input data


def make_payload(n: int) -> bytes:
    """Deterministic incompressible bytes, so runs are comparable and nothing is special-cased."""
    return random.Random(n).randbytes(n)


def split(payload: bytes, size: int) -> list[bytes]:
    return [payload[off : off + size] for off in range(0, len(payload), size)]


def frame(chunks: Sequence[bytes]) -> bytes:
    """Reference chunk framing, written without the codec so that it can check the codec."""
    parts: list[bytes] = []
    for chunk in chunks:
        parts += (format(len(chunk), "x").encode("ascii"), b"\r\n", chunk, b"\r\n")
    return b"".join(parts)


def digest(data: Buffer) -> bytes:
    return hashlib.blake2b(data).digest()


# --------------------------------------------------------------------------- decode sinks


class Sink:
    """Receives decoded pieces; counts them and lets them go (see the module docstring)."""

    __slots__ = ("total",)

    def __init__(self) -> None:
        self.total = 0

    def add(self, piece: Buffer) -> None:
        self.total += len(piece)


class HashingSink(Sink):
    """The sink of the untimed correctness run: also hashes what it receives."""

    __slots__ = ("_hash",)

    def __init__(self) -> None:
        super().__init__()
        self._hash = hashlib.blake2b()

    def add(self, piece: Buffer) -> None:
        self.total += len(piece)
        self._hash.update(piece)

    def digest(self) -> bytes:
        return self._hash.digest()


# --------------------------------------------------------------------------- decode cases

# prepare(reads, sink) does the set-up and returns the run to time, which decodes all reads.
DecodePrepare: TypeAlias = Callable[[Sequence[bytes], Sink], Run]


@dataclass(frozen=True)
class DecodeCase:
    name: str
    prepare: DecodePrepare
    baseline: bool = False  # the memcpy baseline: it counts wire bytes, not body bytes
    optional: bool = False  # a peer: if it breaks, skip it with a note instead of failing


def duplex_decode(cls: type[PyChunkDecoder]) -> DecodePrepare:
    def prepare(reads: Sequence[bytes], sink: Sink) -> Run:
        dec = cls()
        add = sink.add

        def run() -> None:
            for data in reads:
                for piece in dec.feed(data):
                    add(piece)
            check(dec.done, f"{cls.__module__}: body not done after the last read")

        return run

    return prepare


def memcpy_decode(reads: Sequence[bytes], sink: Sink) -> Run:
    # One reused 64 KiB buffer stays in cache: the cheapest copy there is, a strict baseline.
    view = memoryview(bytearray(READ_SIZE))
    add = sink.add

    def run() -> None:
        for data in reads:
            view[: len(data)] = data
            add(data)

    return run


class _HttptoolsProtocol:
    """httptools looks its callbacks up on this object once, when the parser is built."""

    def __init__(self, sink: Sink) -> None:
        self.on_body: Callable[[bytes], None] = sink.add
        self.complete = False

    def on_message_complete(self) -> None:
        self.complete = True


def httptools_decode(reads: Sequence[bytes], sink: Sink) -> Run:
    import httptools

    protocol = _HttptoolsProtocol(sink)
    parser = httptools.HttpResponseParser(protocol)
    parser.feed_data(RESPONSE_HEAD)

    def run() -> None:
        for data in reads:
            parser.feed_data(data)
        check(protocol.complete, "httptools: message not complete after the last read")

    return run


def h11_decode(reads: Sequence[bytes], sink: Sink) -> Run:
    import h11

    conn = h11.Connection(h11.CLIENT)
    conn.send(h11.Request(method="GET", target="/", headers=[("Host", "bench")]))
    conn.send(h11.EndOfMessage())
    conn.receive_data(RESPONSE_HEAD)
    check(isinstance(conn.next_event(), h11.Response), "h11: no Response event")
    add = sink.add

    def run() -> None:
        ended = False
        for data in reads:
            conn.receive_data(data)
            while True:
                event = conn.next_event()
                if type(event) is h11.Data:
                    add(event.data)
                elif event is h11.NEED_DATA:
                    break
                elif type(event) is h11.EndOfMessage:
                    ended = True
                    break
                else:
                    raise BenchmarkError(f"h11: unexpected event {event!r}")
        check(ended, "h11: no EndOfMessage after the last read")

    return run


class _NoFlowControl:
    """The protocol aiohttp's StreamReader asks to pause and resume reading. The benchmark
    drains the reader after every read, so back-pressure has nothing to do here."""

    def pause_reading(self) -> None:
        pass

    def resume_reading(self, resume_parser: bool = True) -> None:
        pass


def aiohttp_parser() -> tuple[type[Any], str] | str:
    """aiohttp's C (llhttp) response parser if it imports, else its Python one, else why not."""
    try:
        from aiohttp._http_parser import HttpResponseParser
    except ImportError:
        pass
    else:
        return HttpResponseParser, "aiohttp (C llhttp)"
    try:
        from aiohttp.http_parser import HttpResponseParserPy
    except ImportError as exc:
        return f"aiohttp not importable ({exc})"
    return HttpResponseParserPy, "aiohttp (Python parser)"


def aiohttp_decode(parser_cls: type[Any], loop: asyncio.AbstractEventLoop) -> DecodePrepare:
    def prepare(reads: Sequence[bytes], sink: Sink) -> Run:
        parser = parser_cls(_NoFlowControl(), loop, 2**16)
        messages, _upgraded, _tail = parser.feed_data(RESPONSE_HEAD)
        check(len(messages) == 1, "aiohttp: no response message after the head")
        payload = messages[0][1]
        add = sink.add

        def run() -> None:
            # Draining with read_nowait() after each read is what `resp.content.iter_any()`
            # does, so its join of the buffered pieces is part of aiohttp's cost.
            for data in reads:
                parser.feed_data(data)
                piece = payload.read_nowait()
                if piece:
                    add(piece)
            check(payload.is_eof(), "aiohttp: payload not at EOF after the last read")

        return run

    return prepare


# --------------------------------------------------------------------------- encode cases

# prepare(chunks) does the set-up and returns the run to time, which frames all chunks.
EncodePrepare: TypeAlias = Callable[[Sequence[bytes]], Run]


@dataclass(frozen=True)
class EncodeCase:
    name: str
    prepare: EncodePrepare
    baseline: bool = False  # b"".join: its output is the bare payload, not framed chunks
    optional: bool = False


def duplex_data_many(cls: type[PyChunkEncoder]) -> EncodePrepare:
    def prepare(chunks: Sequence[bytes]) -> Run:
        enc = cls()
        return lambda: enc.data_many(chunks)

    return prepare


def duplex_data_loop(cls: type[PyChunkEncoder]) -> EncodePrepare:
    def prepare(chunks: Sequence[bytes]) -> Run:
        data = cls().data
        # One framed bytes per write, as a writer doing transport.writelines() would keep.
        return lambda: [data(chunk) for chunk in chunks]

    return prepare


def h11_encode(chunks: Sequence[bytes]) -> Run:
    import h11

    conn = h11.Connection(h11.SERVER)
    conn.receive_data(REQUEST_HEAD)
    check(isinstance(conn.next_event(), h11.Request), "h11: no Request event")
    check(isinstance(conn.next_event(), h11.EndOfMessage), "h11: no EndOfMessage event")
    conn.send(h11.Response(status_code=200, headers=[("Transfer-Encoding", "chunked")]))
    send, data_event = conn.send, h11.Data
    return lambda: [send(data_event(data=chunk)) for chunk in chunks]


def join_encode(chunks: Sequence[bytes]) -> Run:
    # b"".join of a single bytes returns it uncopied: the plans always frame several chunks.
    check(len(chunks) > 1, "the join baseline needs at least two chunks to copy anything")
    return lambda: b"".join(chunks)


def encoded_bytes(output: object) -> bytes:
    """One encoder output (bytes, or a list of per-chunk bytes) as a single bytes object."""
    if isinstance(output, bytes):
        return output
    if isinstance(output, list) and all(isinstance(part, bytes) for part in output):
        return b"".join(output)
    raise BenchmarkError(f"unexpected encoder output type {type(output).__name__}")


# --------------------------------------------------------------------------- timing


def time_runs(runs: Sequence[Run]) -> int:
    """Nanoseconds taken by all ``runs``, back to back, with the collector off (as timeit)."""
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        start = time.perf_counter_ns()
        for run in runs:
            run()
        return time.perf_counter_ns() - start
    finally:
        if was_enabled:
            gc.enable()


def loops_for(one_run_ns: int, plan: Plan) -> int:
    """How many runs make one sample long enough to time reliably."""
    wanted = -(-plan.min_sample_ns // max(one_run_ns, 1))
    return max(1, min(plan.max_loops, wanted))


@dataclass
class Row:
    """One implementation at one chunk size: the numbers printed and written to JSON."""

    op: str
    chunk_size: int
    impl: str
    chunks: int
    payload_bytes: int
    ns_per_chunk: float
    mb_per_s: float  # payload bytes (10**6 a MB) per second
    vs_memcpy: float  # median of (memcpy baseline time / this time), paired per round
    spread: float  # (slowest - fastest) / median of the samples
    loops: int  # runs per sample
    samples_ns: list[float] = field(default_factory=list)  # per run, one per repeat


def paired_ratio(slower: Sequence[float], faster: Sequence[float]) -> float:
    """Median over rounds of slower/faster. Both were timed in the same round, close together,
    so a machine that speeds up or slows down between rounds (shared hosts do) cancels out."""
    return statistics.median(a / b for a, b in zip(slower, faster, strict=True))


def make_rows(
    op: str, size: int, payload: int, samples: dict[str, list[float]], loops: dict[str, int]
) -> list[Row]:
    chunks = payload // size
    rows = []
    for name, values in samples.items():
        median = statistics.median(values)
        rows.append(
            Row(
                op=op,
                chunk_size=size,
                impl=name,
                chunks=chunks,
                payload_bytes=payload,
                ns_per_chunk=median / chunks,
                mb_per_s=payload / median * 1e3,
                vs_memcpy=paired_ratio(samples[MEMCPY], values),
                spread=(max(values) - min(values)) / median,
                loops=loops[name],
                samples_ns=values,
            )
        )
    return rows


def rotated(items: list[Any], shift: int) -> list[Any]:
    shift %= len(items)
    return items[shift:] + items[:shift]


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- decode bench


def decode_sample(case: DecodeCase, reads: Sequence[bytes], loops: int, expected: int) -> float:
    """Time one sample of ``loops`` runs; return ns per run."""
    sink = Sink()
    runs = [case.prepare(reads, sink) for _ in range(loops)]
    elapsed = time_runs(runs)
    check(sink.total == loops * expected, f"{case.name}: {sink.total} bytes out of {loops} runs")
    return elapsed / loops


def verify_decode(case: DecodeCase, reads: Sequence[bytes], payload: bytes) -> None:
    sink = HashingSink()
    case.prepare(reads, sink)()
    check(sink.total == len(payload), f"{case.name}: decoded {sink.total} of {len(payload)}")
    check(sink.digest() == digest(payload), f"{case.name}: decoded bytes differ from the body")


def bench_decode_size(
    size: int, plan: Plan, cases: list[DecodeCase], notes: list[str]
) -> list[Row]:
    payload = make_payload(plan.decode_payload[size])
    wire = frame(split(payload, size)) + LAST_CHUNK
    reads = [wire[off : off + READ_SIZE] for off in range(0, len(wire), READ_SIZE)]
    expected = {c.name: len(wire) if c.baseline else len(payload) for c in cases}
    live, loops = [], {}
    for case in cases:
        try:
            if not case.baseline:
                verify_decode(case, reads, payload)
            one = decode_sample(case, reads, 1, expected[case.name])
        except Exception as exc:
            if not case.optional:
                raise
            notes.append(f"decode {size_label(size)}: {case.name} skipped: {exc!r}")
            continue
        live.append(case)
        loops[case.name] = loops_for(int(one), plan)
    samples: dict[str, list[float]] = {case.name: [] for case in live}
    for rep in range(plan.repeats):
        for case in rotated(live, rep):
            samples[case.name].append(
                decode_sample(case, reads, loops[case.name], expected[case.name])
            )
    return make_rows("decode", size, len(payload), samples, loops)


# --------------------------------------------------------------------------- encode bench


def encode_sample(case: EncodeCase, chunks: Sequence[bytes], loops: int) -> float:
    runs = [case.prepare(chunks) for _ in range(loops)]
    return time_runs(runs) / loops


def verify_encode(case: EncodeCase, chunks: Sequence[bytes], payload: bytes, framed: bytes) -> None:
    out = encoded_bytes(case.prepare(chunks)())
    want = payload if case.baseline else framed
    check(len(out) == len(want), f"{case.name}: encoded {len(out)} bytes, want {len(want)}")
    check(out == want, f"{case.name}: encoded bytes differ from the reference framing")


def bench_encode_size(
    size: int, plan: Plan, cases: list[EncodeCase], notes: list[str]
) -> list[Row]:
    payload = make_payload(plan.encode_payload[size])
    chunks = split(payload, size)
    framed = frame(chunks)
    live, loops = [], {}
    for case in cases:
        try:
            verify_encode(case, chunks, payload, framed)
            one = encode_sample(case, chunks, 1)
        except Exception as exc:
            if not case.optional:
                raise
            notes.append(f"encode {size_label(size)}: {case.name} skipped: {exc!r}")
            continue
        live.append(case)
        loops[case.name] = loops_for(int(one), plan)
    samples: dict[str, list[float]] = {case.name: [] for case in live}
    for rep in range(plan.repeats):
        for case in rotated(live, rep):
            samples[case.name].append(encode_sample(case, chunks, loops[case.name]))
    return make_rows("encode", size, len(payload), samples, loops)


# --------------------------------------------------------------------------- competitors


def importable(module: str, notes: list[str]) -> bool:
    try:
        __import__(module)
    except ImportError as exc:
        notes.append(f"{module} skipped: not importable ({exc})")
        return False
    return True


def decode_cases(loop: asyncio.AbstractEventLoop, notes: list[str]) -> list[DecodeCase]:
    cases = [DecodeCase(MEMCPY, memcpy_decode, baseline=True)]
    if CChunkDecoder is not None:
        cases.append(DecodeCase(C_DECODER, duplex_decode(CChunkDecoder)))
    else:
        notes.append(f"duplexlambda C twin skipped: {IMPORT_ERROR}")
    cases.append(DecodeCase("duplexlambda Python", duplex_decode(PyChunkDecoder)))
    if importable("httptools", notes):
        cases.append(DecodeCase(HTTPTOOLS, httptools_decode, optional=True))
    if importable("h11", notes):
        cases.append(DecodeCase("h11", h11_decode, optional=True))
    found = aiohttp_parser()
    if isinstance(found, str):
        notes.append(found)
    else:
        parser_cls, label = found
        cases.append(DecodeCase(label, aiohttp_decode(parser_cls, loop), optional=True))
    return cases


def encode_cases(notes: list[str]) -> list[EncodeCase]:
    cases = [EncodeCase(MEMCPY, join_encode, baseline=True)]
    if CChunkEncoder is not None:
        inherited = CChunkEncoder.data is PyChunkEncoder.data
        cases += [
            EncodeCase("duplexlambda C data_many", duplex_data_many(CChunkEncoder)),
            EncodeCase(
                "duplexlambda C data loop" + (" (Python code)" if inherited else ""),
                duplex_data_loop(CChunkEncoder),
            ),
        ]
        if inherited:
            notes.append(
                "CChunkEncoder.data is inherited from the Python twin: the 'C data loop' row "
                "runs the same code as 'Python data loop'; any gap between them is noise"
            )
    cases += [
        EncodeCase("duplexlambda Python data_many", duplex_data_many(PyChunkEncoder)),
        EncodeCase("duplexlambda Python data loop", duplex_data_loop(PyChunkEncoder)),
    ]
    if importable("h11", notes):
        cases.append(EncodeCase("h11", h11_encode, optional=True))
    return cases


# --------------------------------------------------------------------------- report


def size_label(size: int) -> str:
    if size >= MiB and size % MiB == 0:
        return f"{size // MiB} MiB"
    if size >= KiB and size % KiB == 0:
        return f"{size // KiB} KiB"
    return f"{size} B"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Processor", "cpu model"):
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def version_of(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def machine_info() -> dict[str, str]:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "cpu": cpu_model(),
        "cores": f"{os.cpu_count()} (usable: {usable if usable is not None else '?'})",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(),
        "duplexlambda IMPL": IMPL + (f" ({IMPORT_ERROR})" if IMPORT_ERROR else ""),
        "versions": ", ".join(
            f"{dist} {version_of(dist)}"
            for dist in ("duplexlambda", "cffi", "httptools", "h11", "aiohttp")
        ),
    }


def fmt_number(value: float) -> str:
    if value < 10:
        return f"{value:.2f}"
    if value < 100:
        return f"{value:.1f}"
    return f"{value:,.0f}"


def table(rows: Sequence[Row]) -> list[str]:
    lines = [
        "| chunk | implementation | ns/chunk | MB/s | x memcpy | spread |",
        "|---:|:---|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {size_label(row.chunk_size)} | {row.impl} | {fmt_number(row.ns_per_chunk)} "
            f"| {fmt_number(row.mb_per_s)} | {row.vs_memcpy:.2f} | {row.spread:.0%} |"
        )
    return lines


@dataclass
class Target:
    """One of the issue's performance targets, and whether this run met it."""

    text: str
    measured: str
    met: bool | None  # None: could not be evaluated (an implementation is missing)


def find(rows: Sequence[Row], size: int, impl: str) -> Row | None:
    for row in rows:
        if row.op == "decode" and row.chunk_size == size and row.impl == impl:
            return row
    return None


def targets(rows: Sequence[Row]) -> list[Target]:
    tiny, tiny_peer = find(rows, 16, C_DECODER), find(rows, 16, HTTPTOOLS)
    small, large = find(rows, KiB, C_DECODER), find(rows, 64 * KiB, C_DECODER)
    out = [
        Target(
            "16 B chunks decode <= 5 ns/chunk",
            f"{tiny.ns_per_chunk:.2f} ns/chunk" if tiny else "n/a",
            tiny.ns_per_chunk <= 5 if tiny else None,
        )
    ]
    if tiny and tiny_peer:
        speedup = paired_ratio(tiny_peer.samples_ns, tiny.samples_ns)
        out.append(Target("16 B chunks decode >= 15x httptools", f"{speedup:.1f}x", speedup >= 15))
    else:
        out.append(Target("16 B chunks decode >= 15x httptools", "n/a", None))
    out.append(
        Target(
            "1 KiB chunks decode >= 0.7x memcpy",
            f"{small.vs_memcpy:.2f}x" if small else "n/a",
            small.vs_memcpy >= 0.7 if small else None,
        )
    )
    out.append(
        Target(
            "64 KiB chunks decode (zero-copy) >= 2x memcpy",
            f"{large.vs_memcpy:.2f}x" if large else "n/a",
            large.vs_memcpy >= 2 if large else None,
        )
    )
    return out


def report(
    plan: Plan,
    machine: dict[str, str],
    decode_rows: list[Row],
    encode_rows: list[Row],
    goals: list[Target],
    notes: list[str],
) -> str:
    lines = ["# duplexlambda chunked codec benchmark", ""]
    lines += [f"- {key}: {value}" for key, value in machine.items()]
    lines += [
        f"- plan: {plan.name}; ns/chunk and MB/s: median of {plan.repeats} interleaved samples; "
        "x memcpy: median over those rounds of (baseline time / time), same input, same round "
        "(> 1: faster than copying); spread = (max - min) / median; MB = 10^6 bytes of body",
        "",
        "## Decode (64 KiB reads)",
        "",
        *table(decode_rows),
        "",
        "## Encode (all chunks framed per run; baseline = b''.join(chunks))",
        "",
        *table(encode_rows),
        "",
        "## Targets (C decoder)",
        "",
    ]
    for goal in goals:
        verdict = {True: "met", False: "MISSED", None: "not evaluated"}[goal.met]
        lines.append(f"- {goal.text}: {goal.measured} -> {verdict}")
    if plan.name == QUICK.name:
        lines.append("- (quick run: bodies too small for these numbers to mean much)")
    if notes:
        lines += ["", "## Notes", ""]
        lines += [f"- {note}" for note in notes]
    return "\n".join(lines)


def write_json(
    path: str,
    plan: Plan,
    machine: dict[str, str],
    rows: list[Row],
    goals: list[Target],
    notes: list[str],
) -> None:
    document = {
        "machine": machine,
        "impl": IMPL,
        "plan": asdict(plan),
        "rows": [asdict(row) for row in rows],
        "targets": [asdict(goal) for goal in goals],
        "notes": notes,
    }
    with open(path, "w", encoding="utf-8") as f:
        json.dump(document, f, indent=2)
        f.write("\n")


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="tiny bodies: a smoke run")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--repeats", type=int, help="samples per measurement (default: plan's)")
    args = parser.parse_args(argv)
    if args.repeats is not None and args.repeats < 1:
        parser.error("--repeats must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    plan = QUICK if args.quick else FULL
    if args.repeats:
        plan = replace(plan, repeats=args.repeats)
    notes: list[str] = []
    machine = machine_info()
    # aiohttp's StreamReader wants a loop object; nothing ever runs on it.
    loop = asyncio.new_event_loop()
    try:
        dcases, ecases = decode_cases(loop, notes), encode_cases(notes)
        decode_rows: list[Row] = []
        for size in CHUNK_SIZES:
            progress(f"decode {size_label(size)} ...")
            decode_rows += bench_decode_size(size, plan, dcases, notes)
        encode_rows: list[Row] = []
        for size in CHUNK_SIZES:
            progress(f"encode {size_label(size)} ...")
            encode_rows += bench_encode_size(size, plan, ecases, notes)
    finally:
        loop.close()
    goals = targets(decode_rows)
    notes = list(dict.fromkeys(notes))  # decode and encode may both report one missing peer
    print(report(plan, machine, decode_rows, encode_rows, goals, notes))
    if args.json:
        write_json(args.json, plan, machine, decode_rows + encode_rows, goals, notes)
    return 0  # a missed target is a finding, not a failure


if __name__ == "__main__":
    sys.exit(main())
