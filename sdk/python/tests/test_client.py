import base64
import json
import os
import socket
import struct
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from flip_runtime.client import ConnectClient, RuntimeCallError, RuntimeUnavailableError, envelope  # noqa: E402
from flip_runtime.testing import RuntimeServer  # noqa: E402

SERVICE = "flip.runtime.v1.RuntimeService"


def quiet(_line):
    pass


class Gateway:
    """Handlers that record what they were given."""

    def __init__(self):
        self.seen = []
        self.failures = []

    def _fail_first(self):
        if self.failures:
            code = self.failures.pop(0)
            raise RuntimeCallError("", code, f"scripted {code}")

    def GetConfig(self, req):
        self.seen.append(("GetConfig", req))
        self._fail_first()
        return {"jobId": "j1", "rounds": 3}

    def GetGlobalWeights(self, req):
        self.seen.append(("GetGlobalWeights", req))
        self._fail_first()
        yield {"round": 2, "sizeBytes": "6", "data": base64.b64encode(b"abc").decode()}
        yield {"round": 2, "data": base64.b64encode(b"def").decode()}

    def ReadImage(self, req):
        yield {"data": base64.b64encode(b"x").decode()}
        raise RuntimeCallError("ReadImage", "not_found", "no image 'y'")

    def PushUpdate(self, messages):
        received = list(messages)
        self.seen.append(("PushUpdate", received))
        return {"sizeBytes": str(sum(len(base64.b64decode(m.get("data", ""))) for m in received))}


class Framing(unittest.TestCase):
    def test_an_envelope_is_a_flag_byte_a_big_endian_length_and_compact_json(self):
        self.assertEqual(envelope({"round": 1}), b"\x00\x00\x00\x00\x0b" + b'{"round":1}')
        self.assertEqual(envelope({}, 0x02), b"\x02\x00\x00\x00\x02{}")


class AgainstAFakeGateway(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="flip-sdk-")
        self.path = os.path.join(self.dir, "rt.sock")
        self.gateway = Gateway()
        self.server = RuntimeServer(self.path, "secret", self.gateway)
        self.client = ConnectClient(self.path, "secret", SERVICE, retry_seconds=5, log=quiet)

    def tearDown(self):
        self.server.close()
        os.rmdir(self.dir)

    def test_a_unary_call_posts_json_and_returns_the_reply(self):
        self.assertEqual(self.client.unary("GetConfig", {"x": 1}), {"jobId": "j1", "rounds": 3})
        self.assertEqual(self.gateway.seen, [("GetConfig", {"x": 1})])

    def test_a_wrong_token_raises_unauthenticated_at_once(self):
        client = ConnectClient(self.path, "wrong", SERVICE, retry_seconds=5, log=quiet)
        started = time.monotonic()
        with self.assertRaises(RuntimeCallError) as ctx:
            client.unary("GetConfig", {})
        self.assertEqual(ctx.exception.code, "unauthenticated")
        self.assertIn("FLIP_RUNTIME_TOKEN", ctx.exception.message)
        self.assertLess(time.monotonic() - started, 1)

    def test_an_unknown_method_raises_unimplemented(self):
        with self.assertRaises(RuntimeCallError) as ctx:
            self.client.unary("Nope", {})
        self.assertEqual(ctx.exception.code, "unimplemented")

    def test_unavailable_is_retried_until_the_gateway_answers(self):
        self.gateway.failures = ["unavailable", "unavailable"]
        self.assertEqual(self.client.unary("GetConfig", {})["jobId"], "j1")
        self.assertEqual(len(self.gateway.seen), 3)

    def test_other_errors_are_raised_with_their_code_and_message(self):
        self.gateway.failures = ["failed_precondition"]
        with self.assertRaises(RuntimeCallError) as ctx:
            self.client.unary("GetConfig", {})
        self.assertEqual((ctx.exception.code, ctx.exception.message, ctx.exception.method), ("failed_precondition", "scripted failed_precondition", "GetConfig"))
        self.assertIsInstance(ctx.exception, RuntimeError)

    def test_a_server_stream_returns_every_message(self):
        messages = self.client.server_stream("GetGlobalWeights", {"round": 0})
        self.assertEqual([m["round"] for m in messages], [2, 2])
        self.assertEqual(self.gateway.seen, [("GetGlobalWeights", {"round": 0})])

    def test_an_error_in_the_end_stream_message_is_raised(self):
        with self.assertRaises(RuntimeCallError) as ctx:
            self.client.server_stream("ReadImage", {"imageId": "y"})
        self.assertEqual(ctx.exception.code, "not_found")

    def test_a_stream_that_fails_unavailable_before_its_messages_is_retried(self):
        self.gateway.failures = ["unavailable"]
        self.assertEqual(len(self.client.server_stream("GetGlobalWeights", {})), 2)

    def test_a_client_stream_sends_every_message_chunked(self):
        chunks = [b"a" * 1_000_000, b"b" * 1_000_000, b"c" * 10]
        messages = lambda: ({"round": 1, "data": base64.b64encode(c).decode()} for c in chunks)  # noqa: E731
        reply = self.client.client_stream("PushUpdate", messages)
        self.assertEqual(reply, {"sizeBytes": "2000010"})
        self.assertEqual(len(self.gateway.seen[0][1]), 3)


class Retries(unittest.TestCase):
    def test_a_missing_socket_is_waited_for(self):
        d = tempfile.mkdtemp(prefix="flip-sdk-")
        path = os.path.join(d, "rt.sock")
        servers = []
        timer = threading.Timer(0.5, lambda: servers.append(RuntimeServer(path, "t", Gateway())))
        timer.start()
        try:
            lines = []
            client = ConnectClient(path, "t", SERVICE, retry_seconds=10, log=lines.append)
            self.assertEqual(client.unary("GetConfig", {})["rounds"], 3)
            self.assertEqual(len(lines), 1, "one line says that the call is waiting")
            self.assertIn("FileNotFoundError", lines[0])
        finally:
            timer.join()
            for s in servers:
                s.close()
            os.rmdir(d)

    def test_a_gateway_that_never_answers_raises_unavailable_after_the_retry_period(self):
        client = ConnectClient("/nonexistent/rt.sock", "t", SERVICE, retry_seconds=0.5, log=quiet)
        started = time.monotonic()
        with self.assertRaises(RuntimeUnavailableError) as ctx:
            client.unary("GetConfig", {})
        self.assertEqual(ctx.exception.code, "unavailable")
        self.assertLess(time.monotonic() - started, 2)


class RawServer:
    """Answers every connection with fixed response bytes, and keeps what it received."""

    def __init__(self, path, responses):
        self.responses = list(responses)
        self.received = []
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(8)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while self.responses:
            conn, _ = self.sock.accept()
            with conn:
                conn.settimeout(2)
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(65536)
                head, _, body = data.partition(b"\r\n\r\n")
                length = int(dict(line.split(b": ", 1) for line in head.split(b"\r\n")[1:]).get(b"Content-Length", b"0"))
                while len(body) < length:
                    body += conn.recv(65536)
                self.received.append((head, body))
                conn.sendall(self.responses.pop(0))
        self.sock.close()


def http_response(status, content_type, body, length=True):
    head = f"HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\n"
    head += f"Content-Length: {len(body)}\r\n" if length else "Connection: close\r\n"
    return head.encode() + b"\r\n" + body


class WireBytes(unittest.TestCase):
    """The client against hand-written bytes, independent of the fake gateway above."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="flip-sdk-")
        self.path = os.path.join(self.dir, "rt.sock")

    def tearDown(self):
        if os.path.exists(self.path):
            os.unlink(self.path)
        os.rmdir(self.dir)

    def test_the_request_carries_the_path_token_and_connect_headers(self):
        server = RawServer(self.path, [http_response(200, "application/json", b"{}")])
        ConnectClient(self.path, "tok", SERVICE, log=quiet).unary("WriteLog", {"lines": ["a"]})
        server.thread.join(2)
        head, body = server.received[0]
        self.assertTrue(head.startswith(b"POST /flip.runtime.v1.RuntimeService/WriteLog HTTP/1.1\r\n"))
        self.assertIn(b"Authorization: Bearer tok\r\n", head)
        self.assertIn(b"Content-Type: application/json\r\n", head)
        self.assertIn(b"Connect-Protocol-Version: 1\r\n", head)
        self.assertEqual(json.loads(body), {"lines": ["a"]})

    def test_a_stream_request_is_one_envelope(self):
        end = b"\x02" + struct.pack(">I", 2) + b"{}"
        server = RawServer(self.path, [http_response(200, "application/connect+json", end, length=False)])
        self.assertEqual(ConnectClient(self.path, "tok", SERVICE, log=quiet).server_stream("GetCohort", {"batchSize": 5}), [])
        server.thread.join(2)
        head, body = server.received[0]
        self.assertIn(b"Content-Type: application/connect+json\r\n", head)
        self.assertEqual(body, b"\x00" + struct.pack(">I", 15) + b'{"batchSize":5}')

    def test_a_unary_error_body_gives_code_and_message(self):
        RawServer(self.path, [http_response(400, "application/json", b'{"code":"invalid_argument","message":"label is empty"}')])
        with self.assertRaises(RuntimeCallError) as ctx:
            ConnectClient(self.path, "tok", SERVICE, log=quiet).unary("ReportMetrics", {})
        self.assertEqual((ctx.exception.code, ctx.exception.message), ("invalid_argument", "label is empty"))

    def test_an_end_stream_error_after_messages_is_raised(self):
        msg = b'{"columns":["a"]}'
        end = b'{"error":{"code":"failed_precondition","message":"cohort below threshold"}}'
        body = b"\x00" + struct.pack(">I", len(msg)) + msg + b"\x02" + struct.pack(">I", len(end)) + end
        RawServer(self.path, [http_response(200, "application/connect+json", body, length=False)])
        with self.assertRaises(RuntimeCallError) as ctx:
            ConnectClient(self.path, "tok", SERVICE, log=quiet).server_stream("GetCohort", {})
        self.assertEqual(ctx.exception.code, "failed_precondition")

    def test_a_stream_cut_before_its_end_is_retried_from_the_start(self):
        msg = b'{"round":1}'
        cut = b"\x00" + struct.pack(">I", len(msg)) + msg
        whole = cut + b"\x02" + struct.pack(">I", 2) + b"{}"
        server = RawServer(self.path, [http_response(200, "application/connect+json", cut, length=False), http_response(200, "application/connect+json", whole, length=False)])
        self.assertEqual(ConnectClient(self.path, "tok", SERVICE, log=quiet).server_stream("GetGlobalWeights", {}), [{"round": 1}])
        server.thread.join(2)
        self.assertEqual(len(server.received), 2)

    def test_a_non_connect_error_status_maps_to_a_code(self):
        RawServer(self.path, [http_response(503, "text/plain", b"restarting")])
        client = ConnectClient(self.path, "tok", SERVICE, retry_seconds=0.05, log=quiet)
        with self.assertRaises(RuntimeUnavailableError):
            client.unary("GetConfig", {})


if __name__ == "__main__":
    unittest.main()
