"""An event-stream parser written from the spec (WHATWG HTML 9.2.6), for tests.

Incremental: bytes may be fed split anywhere (inside a UTF-8 character, between CR and LF).
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass, field


@dataclass
class ParsedEvent:
    data: str
    event: str = "message"
    id: str | None = None
    retry: int | None = None


@dataclass
class SSEParser:
    events: list[ParsedEvent] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    _decoder: codecs.IncrementalDecoder = field(
        default_factory=lambda: codecs.getincrementaldecoder("utf-8")()
    )
    _text: str = ""
    _data: list[str] = field(default_factory=list)
    _event: str = ""
    _id: str | None = None
    _retry: int | None = None

    def feed(self, data: bytes) -> None:
        self._text += self._decoder.decode(data)
        while True:
            cr, lf = self._text.find("\r"), self._text.find("\n")
            ends = [i for i in (cr, lf) if i >= 0]
            if not ends:
                return
            at = min(ends)
            if at == cr and at == len(self._text) - 1:
                return  # a CR at the end: it may be the first half of CRLF
            line = self._text[:at]
            skip = 2 if self._text[at : at + 2] == "\r\n" else 1
            self._text = self._text[at + skip :]
            self._line(line)

    def _line(self, line: str) -> None:
        if line == "":
            if self._data:
                self.events.append(
                    ParsedEvent(
                        "\n".join(self._data), self._event or "message", self._id, self._retry
                    )
                )
            self._data, self._event, self._retry = [], "", None
            return
        if line.startswith(":"):
            self.comments.append(line[1:].removeprefix(" "))
            return
        name, colon, value = line.partition(":")
        value = value.removeprefix(" ") if colon else ""
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self._id = value
        elif name == "retry" and value.isdigit():
            self._retry = int(value)


def parse(data: bytes) -> SSEParser:
    parser = SSEParser()
    parser.feed(data)
    return parser
