#!/usr/bin/env python3
"""A Python worker racing for tasks, on the molt_client package (clients/python, standard library only).

Talks to its own running `molt agent` through the local API: subscribes to the
agent's messages, and for every task offer (a MoltSpeak `task` with step
"offer") claims the task at once. The offerer grants the first claim it
receives and refuses every other one with E_TASK_CLAIMED at once, so each
task is done by exactly one worker: the winner completes it (the square of
params.n), the loser moves on.

usage: python3 worker.py <molt data dir> <name>
Prints "python worker ready" once subscribed, then one JSON line per offer:
{"event": "won"|"lost", "task": id, "code"?: refusal code}. Exits on SIGTERM/SIGINT.
"""
import json
import os
import sys
import time

try:
    from molt_client import InboxEntry, MoltApiError, MoltClient
except ImportError:  # not installed (pip install clients/python): use the copy in this repository
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "clients", "python"))
    from molt_client import InboxEntry, MoltApiError, MoltClient


def say(**event) -> None:
    print(json.dumps(event), flush=True)


def claim(client: MoltClient, task_id: str) -> dict:
    # the offer reached the inbox; the agent files the task a moment later: retry "unknown" briefly
    for _ in range(100):
        try:
            return client.claim(task_id, timeout_ms=30_000)
        except MoltApiError as err:
            if err.code != "E_TASK_UNKNOWN":
                raise
            time.sleep(0.02)
    return client.claim(task_id, timeout_ms=30_000)


def handle(client: MoltClient, name: str, entry: InboxEntry) -> None:
    message = entry["message"]
    p = message.get("p") or {}
    if message.get("op") != "task" or p.get("step") != "offer":
        return
    task_id = str(p["task_id"])
    try:
        task = claim(client, task_id)
    except MoltApiError as err:
        if err.status == 409:  # refused at once: another worker won it (E_TASK_CLAIMED)
            say(event="lost", task=task_id, code=err.code)
            return
        raise
    n = int((task.get("params") or {}).get("n", 0))
    client.progress(task_id, 0.5, f"{name} is squaring {n}")
    client.complete(task_id, {"square": n * n, "by": name})
    say(event="won", task=task_id)


def main() -> int:
    if len(sys.argv) != 3:
        print("usage: python3 worker.py <molt data dir> <name>", file=sys.stderr)
        return 2
    name = sys.argv[2]
    client = MoltClient.from_data_dir(sys.argv[1])
    return client.serve(lambda entry: handle(client, name, entry), on_ready=lambda: print("python worker ready", flush=True))


if __name__ == "__main__":
    sys.exit(main())
