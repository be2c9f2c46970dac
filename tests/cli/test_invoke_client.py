"""``duplexlambda invoke`` against a fake Invoke API (a stdlib server in a thread): what it does
with a broken event stream, a stream cut before ``InvokeComplete``, an ``InvokeComplete`` with
an error, and how it formats a function error."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from duplexlambda.__main__ import build_parser
from duplexlambda.emulator.eventstream import invoke_complete, payload_chunk
from duplexlambda.invoke import format_error, invoke

BODIES: dict[str, bytes] = {}


class FakeApi(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        body = BODIES["next"]
        self.send_response(200)
        self.send_header("Content-Type", "application/vnd.amazon.eventstream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeApi)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def run(port: int, body: bytes, *flags: str) -> tuple[int, bytes, str]:
    BODIES["next"] = body
    args = build_parser().parse_args(["invoke", "--port", str(port), "--stream", *flags])
    out, err = io.BytesIO(), io.StringIO()
    code = invoke(args, out, err)
    return code, out.getvalue(), err.getvalue()


def test_a_good_stream(port: int) -> None:
    body = payload_chunk(b"a") + payload_chunk(b"bc") + invoke_complete()
    code, out, err = run(port, body)
    assert (code, out) == (0, b"abc")
    assert "chunk 2: 2 B" in err


def test_a_corrupt_frame_is_exit_1(port: int) -> None:
    good = payload_chunk(b"a")
    bad = bytearray(payload_chunk(b"b"))
    bad[-1] ^= 0xFF
    code, out, err = run(port, good + bytes(bad))
    assert (code, out) == (1, b"a")
    assert "bad event stream: message CRC mismatch" in err


def test_a_stream_cut_before_invoke_complete_is_exit_1(port: int) -> None:
    code, _, err = run(port, payload_chunk(b"a"))
    assert code == 1
    assert "ended before InvokeComplete" in err


def test_invoke_complete_with_an_error_code_is_exit_1(port: int) -> None:
    details = '{"errorType": "KeyError", "errorMessage": "\'id\'", "stackTrace": ["  File x\\n"]}'
    code, out, err = run(port, payload_chunk(b"part") + invoke_complete("Unhandled", details))
    assert (code, out) == (1, b"part")
    assert "KeyError: 'id'\n    File x\n" in err


def test_format_error_reads_each_shape() -> None:
    assert format_error(b'{"errorType": "E", "errorMessage": "m"}') == "E: m"
    trace = b'{"errorType": "E", "errorMessage": "m", "stackTrace": ["a\\n  b\\n", "c"]}'
    assert format_error(trace) == "E: m\n  a\n    b\n  c"
    assert format_error(b'{"errorMessage": "m"}', "Unhandled") == "Unhandled: m"
    assert format_error(b"not json", "Sandbox.Timeout") == "Sandbox.Timeout: not json"


def test_the_http_prelude_is_named_in_the_report(port: int) -> None:
    prelude = b'{"statusCode":200,"headers":{"content-type":"text/plain"}}'
    body = payload_chunk(prelude) + payload_chunk(b"\x00" * 8) + payload_chunk(b"hi")
    code, out, err = run(port, body + invoke_complete())
    assert code == 0
    assert out == prelude + b"\x00" * 8 + b"hi"
    lines = err.splitlines()
    assert lines[0].endswith(f"chunk 1: {len(prelude)} B (HTTP prelude)")
    assert lines[1].endswith("chunk 2: 8 B (8 NUL bytes: the prelude ends)")
    assert lines[2].endswith("chunk 3: 2 B")
