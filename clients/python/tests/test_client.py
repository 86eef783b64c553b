"""molt_client against two real `molt agent` processes (standard library unittest).

Run by test/examples/python-client.test.ts, which starts the agents and sets:
  MOLT_TEST_DATA_DIR       data dir of agent A (the client under test)
  MOLT_TEST_PEER_DATA_DIR  data dir of agent B (runs --echo, offers MOLT_TEST_CAPABILITY, A's bootstrap peer)
  MOLT_TEST_PEER_ADDRESS   B's loopback multiaddr ending in /p2p/<PeerId>
  MOLT_TEST_CAPABILITY     the capability B's card offers
By hand: start two agents the same way and export those variables.
"""
from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import socket
import sys
import tempfile
import threading
import unittest
from typing import List

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from molt_client import (  # noqa: E402
    InboxEntry, MoltApiError, MoltClient, MoltConfigError, MoltConnectionError, Subscription, read_token,
)


def env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(f"{name} is not set: run these tests through test/examples/python-client.test.ts (see the module docstring)")
    return value


def take(subscription: Subscription, count: int, timeout_s: float = 20.0) -> List[InboxEntry]:
    """The next `count` entries of a subscription, read in a thread so a missing message fails instead of hanging."""
    out: "queue.Queue[object]" = queue.Queue()

    def reader() -> None:
        try:
            got = []
            for entry in subscription:
                got.append(entry)
                if len(got) == count:
                    break
            out.put(got)
        except BaseException as err:  # noqa: BLE001 - handed to the test thread
            out.put(err)

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    try:
        result = out.get(timeout=timeout_s)
    except queue.Empty:
        subscription.close()
        raise AssertionError(f"fewer than {count} messages arrived within {timeout_s} s") from None
    if isinstance(result, BaseException):
        raise result
    return result  # type: ignore[return-value]


class Proxy:
    """A loopback TCP forwarder to the agent's API: stands for the agent listening on another port after a restart."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.sockets: List[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            self.sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self) -> None:
        for s in [self.listener, *self.sockets]:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()


class MoltClientTest(unittest.TestCase):
    a: MoltClient
    b: MoltClient
    a_id: str
    b_id: str
    b_address: str
    capability: str

    @classmethod
    def setUpClass(cls) -> None:
        cls.a = MoltClient.from_data_dir(env("MOLT_TEST_DATA_DIR"))
        cls.b = MoltClient.from_data_dir(env("MOLT_TEST_PEER_DATA_DIR"))
        cls.b_address = env("MOLT_TEST_PEER_ADDRESS")
        cls.capability = env("MOLT_TEST_CAPABILITY")
        cls.a_id = cls.a.identity()["peerId"]
        cls.b_id = cls.b.identity()["peerId"]

    def test_connects_with_the_data_dir_token(self) -> None:
        health = self.a.health()
        self.assertEqual(health["status"], "ok")
        self.assertEqual(health["peerId"], self.a_id)
        self.assertNotEqual(self.a_id, self.b_id)

    def test_a_wrong_token_is_refused_by_the_agent(self) -> None:
        wrong = MoltClient(self.a.url, "0" * 64)
        with self.assertRaises(MoltApiError) as caught:
            wrong.identity()
        self.assertEqual((caught.exception.status, caught.exception.code), (401, "E_AUTH_FAILED"))

    def test_data_dir_errors_are_clear(self) -> None:
        empty = tempfile.mkdtemp(prefix="molt-client-test-")
        try:
            with self.assertRaisesRegex(MoltConfigError, "no molt agent runs"):
                MoltClient.from_data_dir(empty)
            with open(os.path.join(empty, "api-token"), "w", encoding="utf-8") as f:
                f.write("a" * 64)
            os.chmod(os.path.join(empty, "api-token"), 0o644)
            with self.assertRaisesRegex(MoltConfigError, "mode 644"):
                read_token(empty)
            os.chmod(os.path.join(empty, "api-token"), 0o600)
            self.assertEqual(read_token(empty), "a" * 64)
            # an endpoint file left by a process that is gone
            with open(os.path.join(empty, "api.json"), "w", encoding="utf-8") as f:
                json.dump({"port": self.a.port, "pid": 2 ** 22 + 12345}, f)
            with self.assertRaisesRegex(MoltConfigError, "not running"):
                MoltClient.from_data_dir(empty)
        finally:
            shutil.rmtree(empty)

    def test_an_unreachable_api_is_a_connection_error(self) -> None:
        # port 9 (discard) on loopback: nothing listens there in the test environment
        with self.assertRaises(MoltConnectionError):
            MoltClient("http://127.0.0.1:9", "0" * 64, timeout=5).health()

    def test_send_is_delivered(self) -> None:
        result = self.a.send(self.b_address, "register", {"event": "python-client"})
        self.assertEqual(result["status"], "delivered")
        self.assertEqual(result["peer"], self.b_id)
        self.assertEqual(result["message"]["op"], "register")

    def test_request_returns_the_reply(self) -> None:
        reply = self.a.request(self.b_address, "query", {"domain": "test", "intent": "echo", "params": {"n": 7}}, timeout_ms=15_000)
        self.assertEqual(reply["op"], "respond")
        self.assertEqual(reply["p"]["data"]["echo"]["params"], {"n": 7})

    def test_api_errors_carry_the_code_and_field(self) -> None:
        with self.assertRaises(MoltApiError) as caught:
            self.a.send("not-a-peer", "register", {})
        self.assertEqual((caught.exception.status, caught.exception.code, caught.exception.field), (400, "E_INVALID_PARAM", "to"))
        with self.assertRaises(MoltApiError) as caught:
            self.a.send(self.b_address, "register", {}, id="forged")
        self.assertEqual(caught.exception.code, "E_SCHEMA")

    def test_subscription_resumes_by_cursor_after_a_dropped_connection(self) -> None:
        with self.a.subscribe() as subscription:
            for n in range(3):
                self.b.send(self.a_id, "register", {"n": n, "run": "resume"})
            first = take(subscription, 3)
            self.assertEqual([e["message"]["p"]["n"] for e in first], [0, 1, 2])
            self.assertTrue(all(e["peer"] == self.b_id for e in first))
            # cut the connection under the client; what arrives meanwhile must come after the reconnect, once
            conn = subscription._conn
            assert conn is not None and conn.sock is not None
            conn.sock.shutdown(2)
            for n in range(3, 6):
                self.b.send(self.a_id, "register", {"n": n, "run": "resume"})
            rest = take(subscription, 3)
            self.assertEqual([e["message"]["p"]["n"] for e in rest], [3, 4, 5])
            self.assertGreaterEqual(subscription.reconnects, 1)
            cursors = [e["cursor"] for e in first + rest]
            self.assertEqual(cursors, sorted(set(cursors)))
            self.assertEqual(subscription.cursor, cursors[-1])

        # the same messages are in the inbox, after the cursor before the first
        page = self.a.inbox(after=cursors[0] - 1, limit=6)
        self.assertEqual([e["cursor"] for e in page["messages"]], cursors)
        self.assertEqual(page["next"], cursors[-1])
        self.assertGreaterEqual(self.a.ack(cursors[-1]), cursors[-1])
        self.assertGreaterEqual(self.a.health()["acked"], cursors[-1])

    def test_subscription_finds_an_agent_restarted_on_another_port(self) -> None:
        data_dir = tempfile.mkdtemp(prefix="molt-client-test-")
        first, second = Proxy(self.a.port), Proxy(self.a.port)
        try:
            shutil.copy(os.path.join(env("MOLT_TEST_DATA_DIR"), "api-token"), os.path.join(data_dir, "api-token"))
            os.chmod(os.path.join(data_dir, "api-token"), 0o600)

            def publish(port: int) -> None:
                # this process stands for the agent: its pid is alive, as a running agent's is
                with open(os.path.join(data_dir, "api.json"), "w", encoding="utf-8") as f:
                    json.dump({"port": port, "pid": os.getpid()}, f)

            publish(first.port)
            client = MoltClient.from_data_dir(data_dir)
            with client.subscribe() as subscription:
                self.b.send(self.a_id, "register", {"n": 0, "run": "restart"})
                self.assertEqual([e["message"]["p"]["n"] for e in take(subscription, 1)], [0])
                # "restart": the old port goes away, api.json names the new one
                publish(second.port)
                first.close()
                for n in (1, 2):
                    self.b.send(self.a_id, "register", {"n": n, "run": "restart"})
                self.assertEqual([e["message"]["p"]["n"] for e in take(subscription, 2)], [1, 2])
            self.assertEqual(client.port, second.port)
        finally:
            first.close()
            second.close()
            shutil.rmtree(data_dir)

    def test_respond_answers_a_request_read_from_the_stream(self) -> None:
        replies: "queue.Queue[object]" = queue.Queue()
        with self.a.subscribe() as subscription:
            asker = threading.Thread(target=lambda: replies.put(
                self.b.request(self.a_id, "query", {"domain": "test", "intent": "double", "params": {"x": 21}}, timeout_ms=15_000)), daemon=True)
            asker.start()
            [entry] = take(subscription, 1)
            self.a.respond(entry, {"x": entry["message"]["p"]["params"]["x"] * 2})
            reply = replies.get(timeout=20)
        assert isinstance(reply, dict)
        self.assertEqual(reply["op"], "respond")
        self.assertEqual(reply["re"], entry["message"]["id"])
        self.assertEqual(reply["p"], {"status": "success", "data": {"x": 42}})

    def test_serve_handles_and_acknowledges_each_message_until_a_signal(self) -> None:
        sent: List[str] = []
        handled: List[InboxEntry] = []

        def on_ready() -> None:
            for n in (1, 2):
                sent.append(self.b.send(self.a_id, "query", {"domain": "test", "intent": "serve", "params": {"n": n}})["id"])

        def handle(entry: InboxEntry) -> None:
            if entry["message"]["id"] not in sent:
                return
            handled.append(entry)
            if len(handled) == 2:
                os.kill(os.getpid(), signal.SIGTERM)  # ends serve() before this entry is acknowledged

        before = signal.getsignal(signal.SIGTERM)
        # a missing message must fail the test, not hang it
        watchdog = threading.Timer(20.0, lambda: os.kill(os.getpid(), signal.SIGINT))
        watchdog.start()
        try:
            code = self.a.serve(handle, on_ready=on_ready)
        finally:
            watchdog.cancel()
        self.assertEqual(code, 0)
        self.assertEqual([e["message"]["id"] for e in handled], sent)
        self.assertEqual(self.a.health()["acked"], handled[0]["cursor"])
        self.assertIs(signal.getsignal(signal.SIGTERM), before)

    def test_find_by_capability_with_trust(self) -> None:
        agents = self.a.find(self.capability, timeout_ms=10_000, with_trust=True)
        self.assertEqual([a["peerId"] for a in agents], [self.b_id])
        self.assertEqual(agents[0]["card"]["peer_id"], self.b_id)
        self.assertIn(self.capability, [c["name"] for c in agents[0]["card"]["capabilities"]])
        self.assertEqual(agents[0]["trust"]["peer"], self.b_id)
        self.assertEqual(self.a.find("python.nobody", timeout_ms=3_000), [])
        with self.assertRaises(MoltApiError) as caught:
            self.a.find("")
        self.assertEqual(caught.exception.field, "capability")

    def test_cards(self) -> None:
        self.assertEqual(self.a.card()["peer_id"], self.a_id)
        card = self.a.card(self.b_address, force=True, timeout_ms=10_000)
        self.assertEqual(card["peer_id"], self.b_id)

    def test_attest_and_score(self) -> None:
        before = self.a.trust_score(self.b_id)
        record = self.a.attest(self.b_id, "endorsement", domain="python-client", strength="strong")
        self.assertEqual(record["subject"], self.b_id)
        self.assertEqual(record["issuer"], self.a_id)
        listed = self.a.attestations(subject=self.b_id, issuer=self.a_id)
        self.assertIn(record["attestation"]["id"], [r["attestation"]["id"] for r in listed])
        after = self.a.trust_score(self.b_id, domain="python-client")
        self.assertGreater(after["score"], before["score"])
        with self.assertRaises(MoltApiError) as caught:
            self.a.attest(self.a_id, "endorsement")
        self.assertEqual(caught.exception.code, "E_INVALID_PARAM")
        revoked = self.a.revoke(record["attestation"]["id"], "test")
        self.assertEqual(revoked["type"], "revocation")


if __name__ == "__main__":
    unittest.main()
