"""A client of a running molt agent's local API (http://127.0.0.1:<port>/v1).

Everything goes through the agent: its limits, delivery modes and trust
policy apply to what this client does exactly as to the CLI.
"""
from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import stat
import threading
import time
from typing import Any, Callable, Dict, Iterator, List, Optional, cast
from urllib.parse import quote, urlencode, urlsplit

from .errors import MoltApiError, MoltConfigError, MoltConnectionError
from .sse import read_events
from .types import JSON, DiscoveredAgent, InboxEntry, InboxPage, SendResult, TrustScore

#: Files a running agent keeps in its data dir (protocols/api.md)
API_ENDPOINT_FILE = "api.json"
API_TOKEN_FILE = "api-token"
_TOKEN_PATTERN = re.compile(r"^[0-9a-f]{64}$")

#: Socket timeout of a call that does not wait on the network, in seconds
DEFAULT_TIMEOUT_S = 30.0
#: Extra wait on top of a node-side timeout, so the node's E_TIMEOUT reaches us first, in seconds
TIMEOUT_MARGIN_S = 5.0
#: The node's own wait for a reply when a request names none (DEFAULT_REQUEST_TIMEOUT), in ms
DEFAULT_REQUEST_TIMEOUT_MS = 30_000
#: The stream sends a keepalive every 15 s: a read silent for this long means the connection is dead, in seconds
STREAM_READ_TIMEOUT_S = 60.0
#: Wait before reconnecting a dropped stream, in seconds
STREAM_RETRY_S = 0.5
#: Largest answer body read from the API, in bytes (a page of 1000 messages of 1 MiB would not fit: page by `limit`)
MAX_BODY_BYTES = 64 * 1024 * 1024


def default_data_dir() -> str:
    """``$MOLT_HOME``, else ``~/.molt`` (as the molt CLI resolves it)."""
    home = os.environ.get("MOLT_HOME", "").strip()
    return home if home else os.path.join(os.path.expanduser("~"), ".molt")


def read_token(data_dir: str) -> str:
    """The data dir's API token; refused when others can read the file (it may have leaked)."""
    path = os.path.join(data_dir, API_TOKEN_FILE)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise MoltConfigError(f"no API token file {path}: start `molt agent --data-dir {data_dir}` first") from None
    if not stat.S_ISREG(info.st_mode):
        raise MoltConfigError(f"API token file {path} is not a regular file")
    if info.st_mode & 0o077:
        raise MoltConfigError(f"API token file {path} has mode {info.st_mode & 0o777:o}: it must be readable by its owner only")
    with open(path, encoding="utf-8") as f:
        token = f.read().strip()
    if not _TOKEN_PATTERN.match(token):
        raise MoltConfigError(f"API token file {path} is corrupt (expected 64 hex characters)")
    return token


def read_endpoint(data_dir: str) -> int:
    """The port of the agent running on ``data_dir`` (``api.json``), checking its process is alive."""
    path = os.path.join(data_dir, API_ENDPOINT_FILE)
    try:
        with open(path, encoding="utf-8") as f:
            endpoint = json.load(f)
    except FileNotFoundError:
        raise MoltConfigError(f"no molt agent runs with data dir {data_dir} (no {API_ENDPOINT_FILE}): start `molt agent --data-dir {data_dir}`") from None
    except (OSError, ValueError) as err:
        raise MoltConfigError(f"cannot read {path}: {err}") from None
    port, pid = endpoint.get("port"), endpoint.get("pid")
    if not isinstance(port, int) or not isinstance(pid, int):
        raise MoltConfigError(f"{path} is malformed")
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        raise MoltConfigError(f"the agent that wrote {path} (pid {pid}) is not running any more") from None
    except PermissionError:
        pass  # alive, owned by another user
    return port


class MoltClient:
    """One agent's local API.

    >>> client = MoltClient.from_data_dir("~/.molt")
    >>> client.request(peer, "query", {"domain": "weather", "intent": "forecast", "params": {"location": "Lisbon"}})

    Every method raises :class:`MoltApiError` for an error answer (with the
    MoltSpeak ``code``) and :class:`MoltConnectionError` when the API cannot be reached.
    Tasks (offer/claim/complete) have no local API yet: there is no method for them.
    """

    def __init__(self, url: str, token: str, *, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or parts.hostname is None:
            raise ValueError(f"url must be http://<host>:<port>, got {url!r}")
        self.url = url.rstrip("/")
        self.host: str = parts.hostname
        self.port: int = parts.port or 80
        self.timeout = timeout
        self._token = token
        #: set by from_data_dir: where refresh() finds a restarted agent's new port
        self.data_dir: Optional[str] = None

    @classmethod
    def from_data_dir(cls, data_dir: Optional[str] = None, *, timeout: float = DEFAULT_TIMEOUT_S) -> "MoltClient":
        """The agent running on ``data_dir`` (default ``$MOLT_HOME`` or ``~/.molt``), with its token file."""
        directory = os.path.expanduser(data_dir) if data_dir else default_data_dir()
        port = read_endpoint(directory)
        client = cls(f"http://127.0.0.1:{port}", read_token(directory), timeout=timeout)
        client.data_dir = directory
        return client

    def refresh(self) -> bool:
        """Read the port and token from the data dir again (a restarted agent listens on a new port).

        False, and nothing changed, for a client made without a data dir or while no agent runs there.
        """
        if self.data_dir is None:
            return False
        try:
            port, token = read_endpoint(self.data_dir), read_token(self.data_dir)
        except MoltConfigError:
            return False
        self.url, self.host, self.port, self._token = f"http://127.0.0.1:{port}", "127.0.0.1", port, token
        return True

    # --- the agent ---------------------------------------------------------

    def health(self) -> JSON:
        """``{status, peerId, uptimeMs, acked}``"""
        return self._call("GET", "/v1/health")

    def identity(self) -> JSON:
        """``{peerId, did, key, agent: {name, org, capabilities}, addresses}``"""
        return self._call("GET", "/v1/identity")

    def peers(self) -> List[JSON]:
        """Every agent the node knows, most recently seen first."""
        return cast(List[JSON], self._call("GET", "/v1/peers")["peers"])

    def ping(self, to: str, *, timeout_ms: Optional[int] = None) -> JSON:
        """``{rttMs, pong}``"""
        return self._call("POST", "/v1/ping", _fields(to=to, timeoutMs=timeout_ms), wait_ms=timeout_ms)

    # --- messages ----------------------------------------------------------

    def send(self, to: str, op: str, p: Optional[JSON] = None, *, sign: Optional[bool] = None, delivery: Optional[str] = None,
             receipt: Optional[bool] = None, priority: Optional[str] = None, **message: Any) -> SendResult:
        """Send one message; ``to`` is a PeerId or a multiaddr ending in ``/p2p/<PeerId>``.

        ``message`` takes the other MoltSpeak fields (``cls``, ``re``, ``exp``, ``cap``, ``ext``, ``pii_meta``).
        ``delivery`` is ``best-effort``, ``at-least-once`` (default) or ``exactly-once``;
        ``priority`` ``high``, ``normal`` (default) or ``low`` (a high one overtakes queued lower ones).
        """
        body = _fields(to=to, message=_message(op, p, message), sign=sign, delivery=delivery, receipt=receipt, priority=priority)
        return cast(SendResult, self._call("POST", "/v1/messages", body))

    def request(self, to: str, op: str, p: Optional[JSON] = None, *, timeout_ms: Optional[int] = None, sign: Optional[bool] = None,
                **message: Any) -> JSON:
        """Send a request (``query``, ``task``, ``tool``, …) and return the reply (``respond`` or ``error``)."""
        body = _fields(to=to, message=_message(op, p, message), sign=sign, timeoutMs=timeout_ms)
        return cast(JSON, self._call("POST", "/v1/requests", body, wait_ms=timeout_ms or DEFAULT_REQUEST_TIMEOUT_MS)["reply"])

    def respond(self, entry: InboxEntry, data: Any = None, *, status: str = "success", **payload: Any) -> SendResult:
        """Answer a request read from the inbox: ``respond`` with ``re`` = its id, to its sender."""
        p: JSON = {"status": status, **payload}
        if data is not None:
            p["data"] = data
        return self.send(entry["peer"], "respond", p, re=entry["message"]["id"])

    def inbox(self, after: int = 0, limit: Optional[int] = None) -> InboxPage:
        """Messages after the cursor ``after``, oldest first; poll again with ``after=page["next"]``."""
        query = _query(after=after, limit=limit)
        return cast(InboxPage, self._call("GET", f"/v1/messages{query}"))

    def ack(self, cursor: int) -> int:
        """Record that everything up to ``cursor`` was handled; returns the highest cursor acknowledged."""
        return cast(int, self._call("POST", "/v1/messages/ack", {"cursor": cursor})["acked"])

    def subscribe(self, after: Optional[int] = None) -> "Subscription":
        """Every message after ``after`` (default: from now on), pushed as it arrives; see :class:`Subscription`."""
        return Subscription(self, after)

    def messages(self, after: Optional[int] = None) -> Iterator[InboxEntry]:
        """Iterate the inbox forever, from ``after`` (default: from now on), reconnecting by cursor."""
        with self.subscribe(after) as subscription:
            yield from subscription

    def serve(self, handle: Callable[[InboxEntry], None], *, on_ready: Optional[Callable[[], None]] = None,
              after: Optional[int] = None) -> int:
        """Run an agent loop until SIGTERM or SIGINT, then return 0 (an exit status).

        Subscribes to the incoming messages (resumed by cursor after a dropped
        connection), calls ``on_ready()`` once subscribed, then for each entry
        calls ``handle(entry)`` and acknowledges it, so an agent restarted later
        resumes after the last message handled. An exception from ``handle``
        ends the loop and propagates (the entry stays unacknowledged). The
        signal handlers are installed only in the main thread, and restored on
        return.
        """
        previous: Dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT):
                previous[signum] = signal.signal(signum, _stop_serving)
        try:
            with self.subscribe(after) as messages:
                if on_ready is not None:
                    on_ready()
                for entry in messages:
                    handle(entry)
                    self.ack(entry["cursor"])
        except _StopServing:
            pass
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        return 0

    def outbox(self, peer: Optional[str] = None) -> JSON:
        """``{pending, dead}``: messages waiting for unreachable peers and those given up on."""
        return self._call("GET", f"/v1/outbox{_query(peer=peer)}")

    def receipt(self, message_id: str, *, timeout_ms: Optional[int] = None) -> JSON:
        """The signed delivery receipt of a message sent with ``receipt=True``."""
        return cast(JSON, self._call("GET", f"/v1/receipts{_query(id=message_id, timeoutMs=timeout_ms)}", wait_ms=timeout_ms)["receipt"])

    # --- discovery ---------------------------------------------------------

    def find(self, capability: str, *, limit: Optional[int] = None, timeout_ms: Optional[int] = None, with_trust: bool = False) -> List[DiscoveredAgent]:
        """Agents offering ``capability`` (LAN first, then the DHT), each with its verified card; ``with_trust`` adds this agent's score of each."""
        query = _query(capability=capability, limit=limit, timeoutMs=timeout_ms)
        agents = cast(List[DiscoveredAgent], self._call("GET", f"/v1/discover{query}", wait_ms=timeout_ms)["agents"])
        if with_trust:
            for agent in agents:
                agent["trust"] = self.trust_score(agent["peerId"])
        return agents

    def card(self, peer: Optional[str] = None, *, force: bool = False, timeout_ms: Optional[int] = None) -> JSON:
        """A peer's verified agent card, or this agent's own without ``peer``."""
        query = _query(peer=peer, force="true" if force else None, timeoutMs=timeout_ms)
        return cast(JSON, self._call("GET", f"/v1/card{query}", wait_ms=timeout_ms)["card"])

    # --- trust -------------------------------------------------------------

    def trust_score(self, peer: str, *, domain: Optional[str] = None) -> TrustScore:
        """This agent's score of ``peer`` (a PeerId), overall or in one ``domain``."""
        return cast(TrustScore, self._call("GET", f"/v1/trust/{quote(peer, safe='')}{_query(domain=domain)}"))

    def attest(self, subject: str, type: str = "endorsement", *, domain: Optional[str] = None, strength: Optional[str] = None,
               severity: Optional[str] = None, outcome: Optional[str] = None, rating: Optional[int] = None,
               task_id: Optional[str] = None, task_type: Optional[str] = None, context: Optional[str] = None,
               validity_ms: Optional[int] = None) -> JSON:
        """Sign and publish an attestation about ``subject``: ``endorsement``, ``task_completion``, ``warning`` or ``incident_report``.

        ``strength``: weak, moderate, strong, exceptional; ``severity``: low, medium, high, critical;
        ``outcome``: completed, failed, abandoned, timeout; ``rating``: 1-5 (task_completion).
        Answers the stored record ``{attestation, issuer, subject, revoked}``.
        """
        body = _fields(subject=subject, type=type, domain=domain, strength=strength, severity=severity, outcome=outcome, rating=rating,
                       taskId=task_id, taskType=task_type, context=context, validityMs=validity_ms)
        return self._call("POST", "/v1/trust/attestations", body)

    def attestations(self, *, subject: Optional[str] = None, issuer: Optional[str] = None, limit: Optional[int] = None) -> List[JSON]:
        """Stored attestations, newest first: ``[{attestation, issuer, subject, revoked}]``."""
        query = _query(subject=subject, issuer=issuer, limit=limit)
        return cast(List[JSON], self._call("GET", f"/v1/trust/attestations{query}")["attestations"])

    def revoke(self, attestation_id: str, reason: Optional[str] = None) -> JSON:
        """Revoke one of this agent's attestations."""
        return cast(JSON, self._call("POST", "/v1/trust/revocations", _fields(id=attestation_id, reason=reason))["revocation"])

    # --- tasks (protocols/tasks.md) ----------------------------------------

    def offer_task(self, to: Optional[Any] = None, *, topic: Optional[str] = None, **task: Any) -> JSON:
        """Offer a task to one agent, a list of agents (``to``), or a team ``topic``; the first valid claim wins it.

        ``task``: ``id``, ``type``, ``description``, ``params``, ``deadline`` (Unix ms), ``priority``. Answers the task record.
        """
        body = {"topic": topic, "task": task} if topic is not None else {"to": to, "task": task}
        return self._call("POST", "/v1/tasks", body)

    def tasks(self, *, role: Optional[str] = None, state: Optional[str] = None, limit: Optional[int] = None) -> List[JSON]:
        """Tasks this agent offered (``role="offerer"``) or was offered (``"worker"``), newest first."""
        return cast(List[JSON], self._call("GET", f"/v1/tasks{_query(role=role, state=state, limit=limit)}")["tasks"])

    def task(self, task_id: str) -> JSON:
        """One task record (:class:`MoltApiError` ``E_TASK_UNKNOWN`` when there is none)."""
        return self._call("GET", f"/v1/tasks/{quote(task_id, safe='')}")

    def claim(self, task_id: str, *, wait: bool = True, timeout_ms: Optional[int] = None) -> JSON:
        """Claim a task offered to this agent. Granted: the record (state ``claimed``). Refused at once:
        :class:`MoltApiError` with ``status`` 409 and ``code`` ``E_TASK_CLAIMED`` (another agent won it),
        ``E_TASK_CLOSED`` or ``E_TASK_NOT_OFFERED``."""
        wait_ms = (timeout_ms or 30_000) if wait else None
        return self._task_action(task_id, _fields(action="claim", wait=None if wait else False, timeoutMs=timeout_ms), wait_ms=wait_ms)

    def progress(self, task_id: str, progress: Optional[float] = None, note: Optional[str] = None) -> JSON:
        """Report progress (0..1) and/or a note on a task granted to this agent."""
        return self._task_action(task_id, _fields(action="progress", progress=progress, note=note))

    def complete(self, task_id: str, result: Any = None) -> JSON:
        """The task is done: ``result`` (any JSON) goes to the offerer."""
        return self._task_action(task_id, _fields(action="complete", result=result))

    def fail(self, task_id: str, reason: str) -> JSON:
        return self._task_action(task_id, {"action": "fail", "reason": reason})

    def cancel(self, task_id: str, reason: Optional[str] = None) -> JSON:
        """Offerer: withdraw the task."""
        return self._task_action(task_id, _fields(action="cancel", reason=reason))

    def _task_action(self, task_id: str, body: JSON, *, wait_ms: Optional[int] = None) -> JSON:
        return self._call("POST", f"/v1/tasks/{quote(task_id, safe='')}", body, wait_ms=wait_ms)

    # --- team topics (protocols/topics.md) ---------------------------------

    def join_topic(self, name: str) -> JSON:
        """Join ``molt/topic/<name>``: its messages reach the inbox with ``"topic": name``."""
        return self._call("POST", f"/v1/topics/{quote(name, safe='')}", {"action": "join"})

    def leave_topic(self, name: str) -> JSON:
        return self._call("POST", f"/v1/topics/{quote(name, safe='')}", {"action": "leave"})

    def publish(self, name: str, op: str, p: Optional[JSON] = None, **message: Any) -> JSON:
        """Sign and publish a message to every member of a topic: ``{id, topic, recipients, message}``."""
        return self._call("POST", f"/v1/topics/{quote(name, safe='')}", {"action": "publish", "message": _message(op, p, message)})

    def topics(self) -> List[JSON]:
        """Joined topics: ``[{name, topic, peers}]``."""
        return cast(List[JSON], self._call("GET", "/v1/topics")["topics"])

    # --- transport ---------------------------------------------------------

    def connect(self, timeout: Optional[float] = None) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout if timeout is not None else self.timeout)

    def headers(self) -> Dict[str, str]:
        return {"Authorization": f"Bearer {self._token}"}

    def _call(self, method: str, path: str, body: Optional[JSON] = None, *, wait_ms: Optional[int] = None) -> JSON:
        # a call that waits on the network gets the node's deadline plus a margin, so the node's E_TIMEOUT arrives first
        timeout = max(self.timeout, wait_ms / 1000 + TIMEOUT_MARGIN_S) if wait_ms is not None else self.timeout
        headers = self.headers()
        data = None
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        conn = self.connect(timeout)
        try:
            conn.request(method, path, body=data, headers=headers)
            res = conn.getresponse()
            raw = res.read(MAX_BODY_BYTES + 1)
            status = res.status
        except (OSError, http.client.HTTPException) as err:
            raise MoltConnectionError(f"{method} {path}: cannot reach the molt agent at {self.url}: {err}") from err
        finally:
            conn.close()
        if len(raw) > MAX_BODY_BYTES:
            raise MoltConnectionError(f"{method} {path}: answer over {MAX_BODY_BYTES} bytes")
        return _decode(method, path, status, raw)


class Subscription:
    """The agent's incoming messages, pushed over GET /v1/stream (Server-Sent Events).

    The first connection is opened at once (errors such as a bad token are
    raised here); iterating yields every :class:`InboxEntry` in inbox order. A
    dropped connection is reopened after the cursor of the last entry
    yielded, so nothing is lost or seen twice; when the agent cannot be reached
    the client re-reads its data dir, so an agent restarted on another port is
    found again. ``cursor`` is that last cursor
    (keep it to resume after a restart: ``client.subscribe(after=cursor)``).
    """

    def __init__(self, client: MoltClient, after: Optional[int] = None, *, retry_s: float = STREAM_RETRY_S) -> None:
        self.client = client
        self.cursor: Optional[int] = after
        self.retry_s = retry_s
        self.reconnects = 0
        self._closed = False
        self._conn: Optional[http.client.HTTPConnection] = None
        self._res: Optional[http.client.HTTPResponse] = None
        self._open()

    def _open(self) -> None:
        conn = self.client.connect(STREAM_READ_TIMEOUT_S)
        headers = {**self.client.headers(), "Accept": "text/event-stream"}
        path = "/v1/stream" if self.cursor is None else f"/v1/stream?after={self.cursor}"
        try:
            conn.request("GET", path, headers=headers)
            res = conn.getresponse()
        except (OSError, http.client.HTTPException) as err:
            conn.close()
            raise MoltConnectionError(f"GET /v1/stream: cannot reach the molt agent at {self.client.url}: {err}") from err
        if res.status != 200:
            raw = res.read(MAX_BODY_BYTES)
            conn.close()
            _decode("GET", "/v1/stream", res.status, raw)
            raise MoltConnectionError(f"GET /v1/stream answered HTTP {res.status}")
        self._conn, self._res = conn, res

    def __iter__(self) -> Iterator[InboxEntry]:
        while not self._closed:
            if self._res is None:
                try:
                    self._open()
                except MoltConnectionError:
                    self.client.refresh()
                    time.sleep(self.retry_s)
                    continue
            assert self._res is not None
            try:
                for event in read_events(self._res):
                    if event.event != "message":
                        continue
                    entry = cast(InboxEntry, json.loads(event.data))
                    self.cursor = entry["cursor"]
                    yield entry
            except (OSError, http.client.HTTPException, ValueError):
                pass  # dropped or garbled: reconnect after the last cursor
            self._drop()
            if not self._closed:
                self.reconnects += 1
                time.sleep(self.retry_s)

    def _drop(self) -> None:
        conn, self._conn, self._res = self._conn, None, None
        if conn is not None:
            try:
                if conn.sock is not None:
                    conn.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()

    def close(self) -> None:
        """Stop: the iteration ends (a read blocked in another thread is woken by the shutdown)."""
        self._closed = True
        self._drop()

    def __enter__(self) -> "Subscription":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class _StopServing(Exception):
    """Raised by the signal handler of :meth:`MoltClient.serve` to end its loop."""


def _stop_serving(_signum: int, _frame: object) -> None:
    raise _StopServing()


def _message(op: str, p: Optional[JSON], extra: Dict[str, Any]) -> JSON:
    message: JSON = {"op": op}
    if p is not None:
        message["p"] = p
    message.update({k: v for k, v in extra.items() if v is not None})
    return message


def _fields(**fields: Any) -> JSON:
    return {k: v for k, v in fields.items() if v is not None}


def _query(**params: Any) -> str:
    present = {k: str(v) for k, v in params.items() if v is not None}
    return f"?{urlencode(present)}" if present else ""


def _decode(method: str, path: str, status: int, raw: bytes) -> JSON:
    try:
        value = json.loads(raw.decode("utf-8")) if raw else None
    except ValueError:
        value = None
    if 200 <= status < 300:
        if not isinstance(value, dict):
            raise MoltConnectionError(f"{method} {path}: the answer is not a JSON object")
        return value
    error = value.get("error") if isinstance(value, dict) else None
    if isinstance(error, dict):
        raise MoltApiError(str(error.get("message", "")), str(error.get("code", "E_INTERNAL")), status, error.get("field"))
    raise MoltApiError(f"{method} {path} failed with HTTP {status}", "E_INTERNAL", status)
