"""Every way Lambda meets HTTP, sans-I/O: which front sent an event, the HTTP request inside
it, and the answer in the format that front reads (and, for the emulator, the other way
round). Nothing else in the package parses HTTP-shaped events.
"""

from duplexlambda.events.fronts import Front, HttpAnswer, HttpRequest

__all__ = ["Front", "HttpAnswer", "HttpRequest"]
