#!/usr/bin/env python3
"""A molt agent in Python, standard library only.

Talks to a running `molt agent` through its local API (127.0.0.1):
subscribes to GET /v1/stream (Server-Sent Events), answers every weather
`query` with a `respond` through POST /v1/messages, and acknowledges what it
handled with POST /v1/messages/ack. Resumes with Last-Event-ID after a dropped
connection, so no message is lost or handled twice.

usage: python3 agent.py <molt data dir>
Prints "python agent ready" once subscribed; exits cleanly on SIGTERM/SIGINT.
"""
import http.client
import json
import os
import signal
import sys
import time
import urllib.error
import urllib.request

HOST = "127.0.0.1"


class Stop(Exception):
    pass


def on_signal(_signum, _frame):
    raise Stop()


def read_endpoint(data_dir):
    with open(os.path.join(data_dir, "api.json"), encoding="utf-8") as f:
        port = json.load(f)["port"]
    with open(os.path.join(data_dir, "api-token"), encoding="utf-8") as f:
        token = f.read().strip()
    return port, token


def api(port, token, method, path, body=None):
    """One JSON call to the local API; raises on a non-2xx answer"""
    data = None if body is None else json.dumps(body).encode("utf-8")
    req = urllib.request.Request(f"http://{HOST}:{port}{path}", data=data, method=method)
    req.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=30) as res:
        return json.loads(res.read().decode("utf-8"))


def events(res):
    """Yield (id, event, data) for each Server-Sent Event of a response; comments are skipped"""
    event_id, event, data = None, "message", []
    while True:
        raw = res.readline()
        if not raw:
            return  # the server closed the stream
        line = raw.decode("utf-8").rstrip("\r\n")
        if line == "":
            if data:
                yield event_id, event, "\n".join(data)
            event_id, event, data = None, "message", []
        elif line.startswith(":"):
            continue  # keepalive comment
        else:
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "id":
                event_id = value
            elif field == "event":
                event = value
            elif field == "data":
                data.append(value)


def handle(port, token, entry):
    message = entry["message"]
    p = message.get("p") or {}
    if message.get("op") != "query" or p.get("domain") != "weather":
        return
    location = str((p.get("params") or {}).get("location", "nowhere"))
    try:
        api(port, token, "POST", "/v1/messages", {
            "to": entry["peer"],
            "message": {
                "op": "respond",
                "re": message["id"],
                "p": {"status": "success", "data": {"forecast": "rainy", "location": location}},
            },
        })
    except urllib.error.HTTPError as err:
        # the asker may have gone away already: log it and go on with the next message
        detail = err.read().decode("utf-8", "replace")
        print(f"respond to {message['id']} failed: HTTP {err.code} {detail}", file=sys.stderr, flush=True)


def run(data_dir):
    port, token = read_endpoint(data_dir)
    last_id = None
    announced = False
    while True:
        conn = http.client.HTTPConnection(HOST, port, timeout=60)  # keepalives come every 15 s
        headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
        if last_id is not None:
            headers["Last-Event-ID"] = last_id
        try:
            conn.request("GET", "/v1/stream", headers=headers)
            res = conn.getresponse()
            if res.status != 200:
                raise RuntimeError(f"GET /v1/stream answered {res.status}: {res.read().decode('utf-8', 'replace')}")
            if not announced:
                print("python agent ready", flush=True)
                announced = True
            for event_id, event, data in events(res):
                if event != "message":
                    continue
                handle(port, token, json.loads(data))
                last_id = event_id
                api(port, token, "POST", "/v1/messages/ack", {"cursor": int(event_id)})
        except (OSError, http.client.HTTPException) as err:
            print(f"stream interrupted ({err}); reconnecting", file=sys.stderr, flush=True)
            time.sleep(0.5)
        finally:
            conn.close()


def main():
    if len(sys.argv) != 2:
        print("usage: python3 agent.py <molt data dir>", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        run(sys.argv[1])
    except Stop:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
