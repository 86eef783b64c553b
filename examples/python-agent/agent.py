#!/usr/bin/env python3
"""A molt agent in Python, on the molt_client package (clients/python, standard library only).

Talks to a running `molt agent` through its local API (127.0.0.1): subscribes
to its incoming messages (pushed over Server-Sent Events, resumed by cursor
after a dropped connection, so nothing is lost or handled twice), answers
every weather `query` with a `respond`, and acknowledges what it handled.

usage: python3 agent.py <molt data dir>
Prints "python agent ready" once subscribed; exits cleanly on SIGTERM/SIGINT.
"""
import os
import sys

try:
    from molt_client import InboxEntry, MoltApiError, MoltClient
except ImportError:  # not installed (pip install clients/python): use the copy in this repository
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "clients", "python"))
    from molt_client import InboxEntry, MoltApiError, MoltClient


def handle(client: MoltClient, entry: InboxEntry) -> None:
    message = entry["message"]
    p = message.get("p") or {}
    if message.get("op") != "query" or p.get("domain") != "weather":
        return
    location = str((p.get("params") or {}).get("location", "nowhere"))
    try:
        client.respond(entry, {"forecast": "rainy", "location": location})
    except MoltApiError as err:
        # the asker may have gone away already: log it and go on with the next message
        print(f"respond to {message['id']} failed: {err}", file=sys.stderr, flush=True)


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: python3 agent.py <molt data dir>", file=sys.stderr)
        return 2
    client = MoltClient.from_data_dir(sys.argv[1])
    return client.serve(lambda entry: handle(client, entry), on_ready=lambda: print("python agent ready", flush=True))


if __name__ == "__main__":
    sys.exit(main())
