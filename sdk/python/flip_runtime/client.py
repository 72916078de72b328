"""Connect's protocol (JSON codec, HTTP/1.1) over a unix socket, with the standard library only.

Unary calls POST a JSON body and get a JSON body back; a non-200 status carries {"code", "message"}.
Streaming calls send and receive `application/connect+json` envelopes: one flag byte, a big-endian
uint32 length, the JSON message; a response stream ends with an envelope flagged 0x02 whose JSON holds
{"error": {...}} or nothing. One connection per call: nothing to go stale when the gateway restarts.

Every call carries the W3C trace context the client holds (`traceparent`, and `tracestate` when there is
one): at first the container's $TRACEPARENT/$TRACESTATE, then whatever a response names (the gateway names
each round's trace when it hands the round out), so the gateway's spans for the workload's calls join the
trace of the round they belong to.
"""

import base64
import http.client
import json
import os
import re
import socket
import struct
import sys
import time

FLAG_END_STREAM = 0x02
FLAG_COMPRESSED = 0x01
ENVELOPE_HEADER = struct.Struct(">BI")
# Largest message accepted from the server: a 1 MiB chunk, base64, with room to spare.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024

# Connect codes by HTTP status, for an error body that is not Connect's JSON (a proxy, a dying server).
_CODE_OF_STATUS = {
    400: "internal",
    401: "unauthenticated",
    403: "permission_denied",
    404: "unimplemented",
    429: "unavailable",
    502: "unavailable",
    503: "unavailable",
    504: "unavailable",
}

# Errors that mean "nothing answers on the socket right now": the gateway may be restarting.
_CONNECTION_ERRORS = (
    FileNotFoundError,
    ConnectionRefusedError,
    ConnectionResetError,
    ConnectionAbortedError,
    BrokenPipeError,
    http.client.RemoteDisconnected,
    http.client.IncompleteRead,
)


# version-traceid-parentid-flags, lower-case hex, the trace and parent ids not all zeros (W3C Trace Context).
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}$")
# Printable ASCII without the characters that would end or fold a header line.
_TRACESTATE = re.compile(r"^[\x20-\x7e]{1,512}$")


def trace_context_from(traceparent, tracestate=None):
    """The W3C headers to send for a `traceparent` (and `tracestate`); {} when `traceparent` is missing or malformed."""
    traceparent = (traceparent or "").strip()
    if not _TRACEPARENT.match(traceparent):
        return {}
    context = {"traceparent": traceparent}
    tracestate = (tracestate or "").strip()
    if _TRACESTATE.match(tracestate):
        context["tracestate"] = tracestate
    return context


class RuntimeCallError(RuntimeError):
    """A runtime call the gateway refused or failed: `code` is Connect's (e.g. "failed_precondition")."""

    def __init__(self, method, code, message):
        super().__init__(f"{method}: {code}: {message}")
        self.method = method
        self.code = code
        self.message = message


class RuntimeUnavailableError(RuntimeCallError):
    """The gateway did not answer (or answered `unavailable`) for the whole retry period."""


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout):
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(self._path)
        except BaseException:
            sock.close()
            raise
        self.sock = sock


def b64encode(data):
    return base64.b64encode(data).decode("ascii")


def b64decode(text):
    """Connect JSON accepts standard and URL-safe base64, padded or not."""
    text = text.replace("-", "+").replace("_", "/")
    return base64.b64decode(text + "=" * (-len(text) % 4))


def envelope(message, flags=0):
    payload = json.dumps(message, separators=(",", ":")).encode("utf-8")
    return ENVELOPE_HEADER.pack(flags, len(payload)) + payload


def read_envelopes(read):
    """(flags, message) pairs from a response body read with `read(n)`, up to and including end-stream."""
    while True:
        head = _read_exactly(read, ENVELOPE_HEADER.size, allow_eof=True)
        if head is None:
            return
        flags, length = ENVELOPE_HEADER.unpack(head)
        if length > MAX_MESSAGE_BYTES:
            raise RuntimeCallError("stream", "resource_exhausted", f"a message of {length} bytes is larger than {MAX_MESSAGE_BYTES}")
        if flags & FLAG_COMPRESSED:
            raise RuntimeCallError("stream", "internal", "the server sent a compressed message, which was not asked for")
        body = _read_exactly(read, length)
        yield flags, json.loads(body.decode("utf-8")) if body else {}
        if flags & FLAG_END_STREAM:
            return


def _read_exactly(read, n, allow_eof=False):
    parts = []
    got = 0
    while got < n:
        part = read(n - got)
        if not part:
            if allow_eof and got == 0:
                return None
            raise http.client.IncompleteRead(b"".join(parts), n - got)
        parts.append(part)
        got += len(part)
    return b"".join(parts)


def _error_of(method, body, status):
    try:
        err = json.loads(body.decode("utf-8"))
        if isinstance(err, dict) and isinstance(err.get("code"), str):
            return RuntimeCallError(method, err["code"], str(err.get("message", "")))
    except (ValueError, UnicodeDecodeError):
        pass
    code = _CODE_OF_STATUS.get(status, "unknown")
    return RuntimeCallError(method, code, f"HTTP {status}: {body[:200].decode('utf-8', 'replace')}")


class ConnectClient:
    """Calls `service` methods on the Connect server at the unix socket `path`, presenting `token`.

    Connection failures and `unavailable` are retried with backoff for up to `retry_seconds` (the gateway
    may be restarting); any other error raises RuntimeCallError at once. `trace_context` ({"traceparent":
    ..., "tracestate": ...}, default from $TRACEPARENT and $TRACESTATE) is sent on every call, and replaced
    by the one a response carries.
    """

    def __init__(self, path, token, service, retry_seconds=600.0, timeout=120.0, log=None, trace_context=None):
        self.path = path
        self.token = token
        self.service = service
        self.retry_seconds = retry_seconds
        self.timeout = timeout
        self.log = log or (lambda line: print(line, file=sys.stderr, flush=True))
        if trace_context is None:
            trace_context = trace_context_from(os.environ.get("TRACEPARENT"), os.environ.get("TRACESTATE"))
        self.trace_context = dict(trace_context)

    def unary(self, method, request):
        """Calls a unary method with a JSON-able request dict; returns the response dict."""
        body = json.dumps(request, separators=(",", ":")).encode("utf-8")

        def attempt():
            conn = self._connection(self.timeout)
            try:
                conn.request("POST", self._url(method), body=body, headers=self._headers("application/json", len(body)))
                resp = conn.getresponse()
                self._continue_trace(resp)
                data = resp.read()
            finally:
                conn.close()
            if resp.status != 200:
                raise _error_of(method, data, resp.status)
            return json.loads(data.decode("utf-8")) if data else {}

        return self._retrying(method, attempt)

    def server_stream(self, method, request, timeout=None):
        """Calls a server-streaming method; returns all response messages as a list.

        The whole stream is collected before it is returned so that a call that fails halfway (the gateway
        restarted) can be retried from the start without the caller seeing half an answer.
        """

        def attempt():
            conn = self._connection(timeout)
            try:
                payload = envelope(request)
                conn.request("POST", self._url(method), body=payload, headers=self._headers("application/connect+json", len(payload)))
                resp = conn.getresponse()
                self._continue_trace(resp)
                if resp.status != 200:
                    raise _error_of(method, resp.read(), resp.status)
                return self._messages(method, resp)
            finally:
                conn.close()

        return self._retrying(method, attempt)

    def client_stream(self, method, messages):
        """Calls a client-streaming method with `messages()`, a function returning an iterable of dicts
        (called again on a retry); returns the response dict."""

        def attempt():
            conn = self._connection(self.timeout)
            try:
                chunks = (envelope(m) for m in messages())
                conn.request("POST", self._url(method), body=chunks, headers=self._headers("application/connect+json", None), encode_chunked=True)
                resp = conn.getresponse()
                self._continue_trace(resp)
                if resp.status != 200:
                    raise _error_of(method, resp.read(), resp.status)
                replies = self._messages(method, resp)
            finally:
                conn.close()
            if len(replies) != 1:
                raise RuntimeCallError(method, "internal", f"expected one response message, got {len(replies)}")
            return replies[0]

        return self._retrying(method, attempt)

    def _messages(self, method, resp):
        out = []
        ended = False
        for flags, message in read_envelopes(resp.read):
            if flags & FLAG_END_STREAM:
                ended = True
                err = message.get("error")
                if err:
                    raise RuntimeCallError(method, str(err.get("code", "unknown")), str(err.get("message", "")))
            else:
                out.append(message)
        if not ended:
            # The stream was cut before its end: the server went away mid-answer.
            raise http.client.IncompleteRead(b"", None)
        return out

    def _retrying(self, method, attempt):
        deadline = time.monotonic() + self.retry_seconds
        delay = 0.1
        told = False
        while True:
            try:
                return attempt()
            except RuntimeCallError as e:
                if e.code != "unavailable":
                    raise
                reason = f"{e.code}: {e.message}"
            except _CONNECTION_ERRORS as e:
                reason = f"{type(e).__name__}: {e}"
            except (socket.timeout, TimeoutError) as e:
                raise RuntimeCallError(method, "deadline_exceeded", f"no answer from the gateway within the timeout ({e})") from e
            if time.monotonic() + delay > deadline:
                raise RuntimeUnavailableError(method, "unavailable", f"the gateway at {self.path} did not answer for {self.retry_seconds:.0f} s: {reason}")
            if not told:
                self.log(f"flip_runtime: {method}: gateway not answering ({reason}); retrying for up to {self.retry_seconds:.0f} s")
                told = True
            time.sleep(delay)
            delay = min(delay * 2, 5.0)

    def _continue_trace(self, resp):
        """Later calls continue the trace a response names (a new round's), if it names a valid one."""
        named = trace_context_from(resp.getheader("traceparent"), resp.getheader("tracestate"))
        if named:
            self.trace_context = named

    def _connection(self, timeout):
        return _UnixHTTPConnection(self.path, timeout)

    def _url(self, method):
        return f"/{self.service}/{method}"

    def _headers(self, content_type, length):
        headers = {
            "Content-Type": content_type,
            "Connect-Protocol-Version": "1",
            "Authorization": f"Bearer {self.token}",
            "Accept-Encoding": "identity",
        }
        headers.update(self.trace_context)
        if length is not None:
            headers["Content-Length"] = str(length)
        return headers
