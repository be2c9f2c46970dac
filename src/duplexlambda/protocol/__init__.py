"""Sans-I/O protocol core: bytes in, events out; calls in, bytes out.

Imports only the standard library, msgspec, httptools and its own C twin: never asyncio,
sockets or clocks (callers pass the time in). A test holds it to that.
"""
