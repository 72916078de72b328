"""A test workload for the gateway's training tests: the standard library only, Connect over AF_UNIX.

It trains a toy model (adds 1 to every weight of tensor "w"), reports a metric per round and pushes its
update, until the gateway says the job is done. config_json steers it for the tests:
  sandbox: report what the sandbox looks like from inside (an event "sandbox")
  exit_in_round, exit_code: exit with that code in that round (after printing a line)
  hang: never push (the round waits until it is cancelled or the job stops)
  wait_for: a file under /flip/scratch to wait for before pushing (a test creates it)
  evaluate: a mode the gateway sets; then it pushes nothing and asks for the next round
"""
import base64
import errno
import http.client
import json
import os
import socket
import struct
import sys
import time

SOCKET = os.environ["FLIP_RUNTIME_SOCKET"]
TOKEN = os.environ["FLIP_RUNTIME_TOKEN"]
PREFIX = "/flip.runtime.v1.RuntimeService/"


class UnixConnection(http.client.HTTPConnection):
    def __init__(self):
        super().__init__("localhost", timeout=3600)

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(SOCKET)
        self.sock = s


def post(method, body, content_type):
    """One request; retried while the gateway is away (a restarted gateway serves the same socket again)."""
    deadline = time.time() + 120
    while True:
        try:
            c = UnixConnection()
            c.request("POST", PREFIX + method, body, {"Content-Type": content_type, "Authorization": "Bearer " + TOKEN})
            r = c.getresponse()
            data = r.read()
            c.close()
            return r.status, data
        except (ConnectionError, FileNotFoundError, http.client.RemoteDisconnected):
            if time.time() > deadline:
                raise
            time.sleep(0.2)


def unary(method, message):
    status, data = post(method, json.dumps(message).encode(), "application/json")
    if status != 200:
        raise RuntimeError(f"{method}: HTTP {status}: {data.decode(errors='replace')}")
    return json.loads(data or b"{}")


def envelope(message, flags=0):
    body = json.dumps(message).encode()
    return struct.pack(">BI", flags, len(body)) + body


def streaming(method, messages):
    status, data = post(method, b"".join(envelope(m) for m in messages), "application/connect+json")
    if status != 200:
        raise RuntimeError(f"{method}: HTTP {status}: {data.decode(errors='replace')}")
    out, i = [], 0
    while i < len(data):
        flags, n = struct.unpack(">BI", data[i : i + 5])
        payload = json.loads(data[i + 5 : i + 5 + n])
        i += 5 + n
        if flags & 2:
            if payload.get("error"):
                raise RuntimeError(f"{method}: {payload['error']}")
        else:
            out.append(payload)
    return out


def safetensors_w(values):
    header = json.dumps({"w": {"dtype": "F32", "shape": [len(values)], "data_offsets": [0, 4 * len(values)]}}).encode()
    header += b" " * ((8 - len(header) % 8) % 8)
    return struct.pack("<Q", len(header)) + header + struct.pack(f"<{len(values)}f", *values)


def read_w(data):
    n = struct.unpack("<Q", data[:8])[0]
    entry = json.loads(data[8 : 8 + n])["w"]
    begin, end = entry["data_offsets"]
    raw = data[8 + n + begin : 8 + n + end]
    return list(struct.unpack(f"<{len(raw) // 4}f", raw))


def sandbox_facts():
    facts = {"uid": str(os.getuid())}
    with open("/proc/net/dev") as f:
        facts["interfaces"] = ",".join(sorted(line.split(":")[0].strip() for line in f.readlines()[2:]))
    try:
        with open("/flip-probe", "w") as f:
            f.write("x")
        facts["root_write"] = "ok"
    except OSError as e:
        facts["root_write"] = errno.errorcode.get(e.errno, str(e.errno))
    try:
        with open("/flip/scratch/probe", "w") as f:
            f.write("x")
        facts["scratch_write"] = "ok"
    except OSError as e:
        facts["scratch_write"] = errno.errorcode.get(e.errno, str(e.errno))
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("CapEff", "CapPrm", "CapBnd", "NoNewPrivs"):
                facts[key] = value.strip()
    try:
        socket.create_connection(("10.0.0.1", 80), timeout=2)
        facts["tcp"] = "connected"
    except OSError as e:
        facts["tcp"] = type(e).__name__
    return facts


def main():
    config = unary("GetConfig", {})
    settings = json.loads(config.get("configJson") or "{}")
    evaluate = config.get("mode") == "evaluate"
    print(f"workload up for job {config['jobId']} at {config['trustCode']}", flush=True)
    if settings.get("sandbox"):
        unary("ReportEvent", {"kind": "sandbox", "details": sandbox_facts()})
    while True:
        messages = streaming("GetGlobalWeights", [{"round": 0}])
        if any(m.get("done") for m in messages):
            print("job done", flush=True)
            return 0
        rnd = messages[0]["round"]
        data = b"".join(base64.b64decode(m.get("data", "")) for m in messages)
        weights = read_w(data) if data else [0.0] * 4
        print(f"round {rnd}: training from {weights}", flush=True)
        unary("ReportMetrics", {"metrics": [{"label": "loss", "value": 1.0 / rnd, "round": rnd}]})
        if settings.get("exit_in_round") == rnd:
            print(f"round {rnd}: failing on purpose", flush=True)
            return settings.get("exit_code", 1)
        if settings.get("hang"):
            print(f"round {rnd}: hanging", flush=True)
            while True:
                time.sleep(60)
        if evaluate:
            continue
        if settings.get("wait_for"):
            print(f"round {rnd}: waiting for {settings['wait_for']}", flush=True)
            while not os.path.exists(os.path.join("/flip/scratch", settings["wait_for"])):
                time.sleep(0.1)
        update = safetensors_w([w + 1 for w in weights])
        half = len(update) // 2
        streaming(
            "PushUpdate",
            [
                {"round": rnd, "sampleCount": "10", "data": base64.b64encode(update[:half]).decode()},
                {"data": base64.b64encode(update[half:]).decode()},
            ],
        )
        print(f"round {rnd}: pushed", flush=True)


if __name__ == "__main__":
    sys.exit(main())
