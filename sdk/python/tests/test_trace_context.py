"""The W3C trace context the client carries: the container's, then the one each round names."""

import os
import sys
import tempfile
import unittest
from unittest import mock

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(__file__))

from flip_runtime.client import ConnectClient  # noqa: E402
from test_client import RawServer, http_response, quiet  # noqa: E402

SERVICE = "flip.runtime.v1.RuntimeService"
ROUND_1 = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
ROUND_2 = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def header_lines(head):
    """The request's header lines, lower-cased names, as (name, value) pairs."""
    lines = head.decode("latin-1").split("\r\n")[1:]
    return [(name.lower(), value) for name, _, value in (line.partition(": ") for line in lines)]


class TraceContext(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="flip-sdk-")
        self.path = os.path.join(self.dir, "rt.sock")

    def tearDown(self):
        if os.path.exists(self.path):
            os.unlink(self.path)
        os.rmdir(self.dir)

    def calls(self, responses, env, n=1):
        """Makes `n` calls with a client created under `env`; returns each request's header lines."""
        server = RawServer(self.path, responses)
        with mock.patch.dict(os.environ, env, clear=False):
            for name in ("TRACEPARENT", "TRACESTATE"):
                if name not in env:
                    os.environ.pop(name, None)
            client = ConnectClient(self.path, "tok", SERVICE, log=quiet)
        for _ in range(n):
            client.unary("GetConfig", {})
        server.thread.join(2)
        return [header_lines(head) for head, _ in server.received]

    def test_every_call_carries_the_traceparent_and_tracestate_the_container_was_given(self):
        ok = http_response(200, "application/json", b"{}")
        requests = self.calls([ok, ok], {"TRACEPARENT": ROUND_1, "TRACESTATE": "flip=1"}, n=2)
        self.assertEqual(len(requests), 2)
        for headers in requests:
            self.assertIn(("traceparent", ROUND_1), headers)
            self.assertIn(("tracestate", "flip=1"), headers)

    def test_a_client_without_a_trace_context_sends_none(self):
        requests = self.calls([http_response(200, "application/json", b"{}")], {})
        names = [name for name, _ in requests[0]]
        self.assertNotIn("traceparent", names)
        self.assertNotIn("tracestate", names)

    def test_a_malformed_traceparent_is_not_sent(self):
        requests = self.calls([http_response(200, "application/json", b"{}")], {"TRACEPARENT": "00-not-a-trace\r\nX-Evil: 1", "TRACESTATE": "a=b"})
        names = [name for name, _ in requests[0]]
        self.assertNotIn("traceparent", names)
        self.assertNotIn("tracestate", names, "a tracestate without a valid traceparent means nothing")
        self.assertNotIn("x-evil", names)

    def test_the_calls_after_an_answer_that_names_a_trace_continue_that_trace(self):
        named = b"HTTP/1.1 200 X\r\nContent-Type: application/json\r\ntraceparent: " + ROUND_2.encode() + b"\r\nContent-Length: 2\r\n\r\n{}"
        requests = self.calls([named, http_response(200, "application/json", b"{}")], {"TRACEPARENT": ROUND_1, "TRACESTATE": "flip=1"}, n=2)
        self.assertIn(("traceparent", ROUND_1), requests[0])
        self.assertIn(("traceparent", ROUND_2), requests[1])
        self.assertNotIn("tracestate", [name for name, _ in requests[1]], "the new trace's state replaces the old one's")


if __name__ == "__main__":
    unittest.main()
