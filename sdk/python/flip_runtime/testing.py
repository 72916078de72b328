"""A stand-in for the trust gateway's runtime API, to run a workload without the platform.

    class Gateway:
        def GetConfig(self, req): return {"jobId": "j1", "rounds": 2, "configJson": "{}"}
        def GetGlobalWeights(self, req): yield {"round": 1}      # a server stream: a generator
        def PushUpdate(self, messages): return {"sizeBytes": "8"}  # a client stream: an iterator in
    server = RuntimeServer("/tmp/rt.sock", "token", Gateway())
    ...  # FLIP_RUNTIME_SOCKET=/tmp/rt.sock FLIP_RUNTIME_TOKEN=token python3 train.py
    server.close()

Handlers take and return Connect JSON dicts (camelCase names, uint64 as strings, bytes as base64) and
raise RuntimeCallError to answer an error; a method without a handler answers `unimplemented`.
"""

import json
import os
import socketserver
import threading
from http.server import BaseHTTPRequestHandler

from .client import FLAG_END_STREAM, RuntimeCallError, envelope, read_envelopes
from .runtime import SERVICE

SERVER_STREAMS = {"GetCohort", "ReadImage", "GetGlobalWeights"}
CLIENT_STREAMS = {"PushUpdate"}

HTTP_STATUS = {
    "canceled": 499,
    "unknown": 500,
    "invalid_argument": 400,
    "deadline_exceeded": 504,
    "not_found": 404,
    "already_exists": 409,
    "permission_denied": 403,
    "resource_exhausted": 429,
    "failed_precondition": 400,
    "aborted": 409,
    "out_of_range": 400,
    "unimplemented": 501,
    "internal": 500,
    "unavailable": 503,
    "data_loss": 500,
    "unauthenticated": 401,
}


class _ChunkedReader:
    """read(n) over an HTTP/1.1 chunked body."""

    def __init__(self, rfile):
        self.rfile = rfile
        self.left = 0
        self.done = False

    def read(self, n):
        if self.done:
            return b""
        if self.left == 0:
            line = self.rfile.readline(1024)
            size = int(line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass
                self.done = True
                return b""
            self.left = size
        data = self.rfile.read(min(n, self.left))
        self.left -= len(data)
        if self.left == 0:
            self.rfile.readline(16)
        return data


class _LengthReader:
    def __init__(self, rfile, length):
        self.rfile = rfile
        self.left = length

    def read(self, n):
        data = self.rfile.read(min(n, self.left)) if self.left > 0 else b""
        self.left -= len(data)
        return data


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "flip-runtime-testing"

    def log_message(self, format, *args):
        pass

    def do_POST(self):
        self.close_connection = True
        prefix = f"/{SERVICE}/"
        method = self.path[len(prefix) :] if self.path.startswith(prefix) else ""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = _ChunkedReader(self.rfile)
        else:
            body = _LengthReader(self.rfile, int(self.headers.get("Content-Length") or 0))
        streaming = method in SERVER_STREAMS or method in CLIENT_STREAMS
        try:
            if self.headers.get("Authorization") != f"Bearer {self.server.token}":
                raise RuntimeCallError(method, "unauthenticated", "present the job's token: Authorization: Bearer $FLIP_RUNTIME_TOKEN")
            fn = getattr(self.server.gateway, method, None) if method else None
            if fn is None:
                raise RuntimeCallError(method, "unimplemented", f"{self.path} is not implemented")
            if streaming:
                if not self.headers.get("Content-Type", "").startswith("application/connect+json"):
                    raise RuntimeCallError(method, "unimplemented", "streaming calls take application/connect+json")
                messages = (m for flags, m in read_envelopes(body.read) if not flags & FLAG_END_STREAM)
                if method in CLIENT_STREAMS:
                    replies = [fn(messages)]
                else:
                    request = next(messages, {})
                    replies = fn(request)
                self._stream(replies)
            else:
                request = json.loads(body.read(1 << 30) or b"{}")
                self._reply(200, fn(request))
        except RuntimeCallError as e:
            if streaming:
                self._stream([], e)
            else:
                self._reply(HTTP_STATUS.get(e.code, 500), {"code": e.code, "message": e.message})
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _reply(self, status, message):
        data = json.dumps(message).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)

    def _stream(self, replies, error=None):
        self.send_response(200)
        self.send_header("Content-Type", "application/connect+json")
        self.send_header("Connection", "close")
        self.end_headers()
        try:
            for m in replies:
                self.wfile.write(envelope(m))
                self.wfile.flush()
        except RuntimeCallError as e:
            error = e
        end = {"error": {"code": error.code, "message": error.message}} if error else {}
        self.wfile.write(envelope(end, FLAG_END_STREAM))


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


class RuntimeServer:
    """Serves `gateway`'s handler methods on the unix socket `path` for callers presenting `token`."""

    def __init__(self, path, token, gateway):
        if os.path.exists(path):
            os.unlink(path)
        self.path = path
        self._server = _Server(path, _Handler)
        self._server.token = token
        self._server.gateway = gateway
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name=f"runtime-server {path}", daemon=True)
        self._thread.start()

    def close(self):
        self._server.shutdown()
        self._server.server_close()
        if os.path.exists(self.path):
            os.unlink(self.path)
