"""A Server-Sent Events reader for GET /v1/stream (standard library only)."""
from __future__ import annotations

from typing import IO, Iterator, NamedTuple, Optional

#: Longest line accepted from the stream; the API bounds a message at 1 MiB, JSON adds its escaping
MAX_LINE_BYTES = 8 * 1024 * 1024


class Event(NamedTuple):
    id: Optional[str]
    event: str
    data: str


def read_events(stream: IO[bytes]) -> Iterator[Event]:
    """Yield each event of a text/event-stream body until the server closes it; comments are skipped."""
    event_id: Optional[str] = None
    event = "message"
    data: list[str] = []
    while True:
        raw = stream.readline(MAX_LINE_BYTES + 1)
        if not raw:
            return
        if len(raw) > MAX_LINE_BYTES:
            raise ValueError(f"event stream line over {MAX_LINE_BYTES} bytes")
        line = raw.decode("utf-8").rstrip("\r\n")
        if line == "":
            if data:
                yield Event(event_id, event, "\n".join(data))
            event_id, event, data = None, "message", []
        elif line.startswith(":"):
            continue  # `: connected`, `: keepalive`
        else:
            field, _, value = line.partition(":")
            if value.startswith(" "):
                value = value[1:]
            if field == "id":
                event_id = value
            elif field == "event":
                event = value
            elif field == "data":
                data.append(value)
