"""Plays the trust gateways and the hub for a workload, without Node, Docker or a network.

Serves flip.runtime.v1 (Connect over a unix socket, via the SDK's flip_runtime.testing) to one workload
process per simulated trust, runs the rounds, averages the updates (FedAvg weighted by sample counts,
in numpy) between them, and prints one JSON summary line on stdout; everything else goes to stderr.

    python3 tools/gpu/runtime_stub.py --workload workloads/train-torch/train.py --trusts 2 --rounds 3 --gpus 1

Exit status: 0 when every round aggregated and every workload exited 0 (and, with --require-cuda,
every workload reported training on CUDA); 1 otherwise.
"""

import argparse
import base64
import json
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(REPO, "sdk", "python"))

import numpy as np  # noqa: E402

from flip_runtime import safetensors as st  # noqa: E402
from flip_runtime.client import RuntimeCallError  # noqa: E402
from flip_runtime.testing import RuntimeServer  # noqa: E402

CHUNK_BYTES = 1024 * 1024
TRUST_CODES = ["north", "south", "east", "west", "central", "coast", "valley", "ridge"]


def image_format(name):
    """As the gateway names formats: "nifti" for .nii and .nii.gz, else the extension."""
    lower = name.lower()
    if lower.endswith((".nii", ".nii.gz")):
        return "nifti"
    return os.path.splitext(lower)[1].lstrip(".") or "unknown"


def fedavg(updates):
    """The sample-weighted average of safetensors updates [(samples, bytes)]: floats averaged in float64
    and cast back to their dtype; integer tensors (e.g. BatchNorm's step count) from the heaviest update."""
    parsed = [(samples, st.loads(data)) for samples, data in updates]
    total = sum(samples for samples, _ in parsed)
    heaviest = max(parsed, key=lambda p: p[0])[1]
    out = {}
    for name, first in heaviest.items():
        for _, tensors in parsed:
            t = tensors.get(name)
            if t is None or t.dtype != first.dtype or t.shape != first.shape:
                raise ValueError(f"tensor {name}: updates disagree on its dtype or shape")
        if first.dtype not in ("F64", "F32", "F16", "BF16"):
            out[name] = first
            continue
        acc = np.zeros(first.shape, dtype=np.float64)
        for samples, tensors in parsed:
            acc += st.to_numpy(tensors[name]).astype(np.float64) * (samples / total)
        if first.dtype == "BF16":
            bits = acc.astype(np.float32).reshape(-1).view(np.uint32)
            rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype("<u2")
            out[name] = st.Tensor("BF16", first.shape, rounded.tobytes())
        else:
            out[name] = st.from_numpy(acc.astype({"F64": np.float64, "F32": np.float32, "F16": np.float16}[first.dtype]))
    return st.dumps(out)


class Federation:
    """The hub's side: rounds, updates, the global weights. One lock and condition for all trusts."""

    def __init__(self, trusts, rounds, log, evaluate=False, weights=None):
        self.trusts = trusts
        self.rounds = rounds
        self.evaluate = evaluate
        self.round = 1
        self.weights = weights
        self.finished = {}
        self.delivered = {}
        self.done = False
        self.failed = None
        self.round_started = time.monotonic()
        self.round_seconds = []
        self.cond = threading.Condition()
        self.log = log

    def next_round(self, trust, requested):
        with self.cond:
            # An evaluating workload that asks again after receiving the round's weights has finished it.
            if self.evaluate and self.delivered.get(trust) == self.round and trust not in self.finished:
                self._finish(trust, self.round, None)
            while True:
                if self.done or self.failed:
                    return None
                if requested and requested < self.round:
                    raise RuntimeCallError("GetGlobalWeights", "failed_precondition", f"round {requested} is over: the job is on round {self.round}")
                if (requested in (0, self.round)) and trust not in self.finished:
                    self.delivered[trust] = self.round
                    return self.round, self.weights
                self.cond.wait(1.0)

    def push(self, trust, round, samples, data):
        with self.cond:
            if round != self.round or self.done:
                raise RuntimeCallError("PushUpdate", "failed_precondition", f"round {round} is not open (the job is on round {self.round})")
            if trust in self.finished:
                raise RuntimeCallError("PushUpdate", "failed_precondition", f"{trust} already pushed round {round}")
            if self.evaluate:
                raise RuntimeCallError("PushUpdate", "failed_precondition", "this is an evaluation job: it takes no updates")
            try:
                st.loads(data)
            except st.SafetensorsError as e:
                raise RuntimeCallError("PushUpdate", "invalid_argument", f"not a valid safetensors file: {e}") from None
            self.log(f"round {round}: update from {trust} ({len(data)} bytes, {samples} samples)")
            self._finish(trust, round, (samples, data))

    def _finish(self, trust, round, update):
        """Records that `trust` finished `round` (with its update, or None in an evaluation); the last one closes it."""
        self.finished[trust] = update
        if len(self.finished) == len(self.trusts):
            updates = [u for u in self.finished.values() if u is not None]
            if updates:
                try:
                    self.weights = fedavg(updates)
                except ValueError as e:
                    self.failed = f"round {round}: {e}"
            self.round_seconds.append(time.monotonic() - self.round_started)
            self.log(f"round {round}: closed with {len(updates)} updates in {self.round_seconds[-1]:.2f} s")
            self.finished = {}
            self.round += 1
            self.round_started = time.monotonic()
            if self.round > self.rounds:
                self.done = True
        self.cond.notify_all()

    def abort(self, reason):
        with self.cond:
            self.failed = self.failed or reason
            self.cond.notify_all()


class TrustGateway:
    """flip.runtime.v1 for one trust's workload (handler names are the RPCs)."""

    def __init__(self, federation, code, args, images_dir, cohort):
        self.federation = federation
        self.code = code
        self.args = args
        self.images_dir = images_dir
        self.cohort = cohort
        self.metrics = []
        self.events = []
        self.lock = threading.Lock()

    def GetConfig(self, req):
        return {
            "jobId": "stub-job",
            "projectId": "stub-project",
            "trustCode": self.code,
            "rounds": self.federation.rounds,
            "configJson": self.args.config,
            "mode": "evaluate" if self.federation.evaluate else "train",
            "gpus": self.args.gpus,
            "currentRound": self.federation.round,
        }

    def GetCohort(self, req):
        if self.cohort is None:
            raise RuntimeCallError("GetCohort", "failed_precondition", "the runtime stub has no cohort (give --cohort)")
        size = int(req.get("batchSize") or 1000)
        rows = self.cohort["rows"]
        for at in range(0, max(len(rows), 1), size):
            yield {"columns": self.cohort["columns"], "rows": [{"values": [json.dumps(v) for v in row]} for row in rows[at : at + size]]}

    def ListImages(self, req):
        return {"images": [{"imageId": name, "format": image_format(name), "sizeBytes": str(os.path.getsize(os.path.join(self.images_dir, name))), "studyKey": ""} for name in self._image_names()]}

    def ReadImage(self, req):
        if req.get("imageId") not in self._image_names():
            raise RuntimeCallError("ReadImage", "not_found", f"no image {req.get('imageId')!r}")
        with open(os.path.join(self.images_dir, req["imageId"]), "rb") as f:
            while chunk := f.read(CHUNK_BYTES):
                yield {"data": base64.b64encode(chunk).decode()}

    def _image_names(self):
        if not self.images_dir:
            return []
        return sorted(n for n in os.listdir(self.images_dir) if os.path.isfile(os.path.join(self.images_dir, n)) and not n.startswith("."))

    def GetGlobalWeights(self, req):
        got = self.federation.next_round(self.code, int(req.get("round") or 0))
        if got is None:
            yield {"done": True}
            return
        number, weights = got
        if weights is None:
            yield {"round": number}
            return
        for at in range(0, len(weights), CHUNK_BYTES):
            msg = {"round": number, "data": base64.b64encode(weights[at : at + CHUNK_BYTES]).decode()}
            if at == 0:
                msg["sizeBytes"] = str(len(weights))
            yield msg

    def PushUpdate(self, messages):
        first = next(messages, None)
        if first is None:
            raise RuntimeCallError("PushUpdate", "invalid_argument", "no messages")
        parts = [base64.b64decode(first.get("data", ""))] + [base64.b64decode(m.get("data", "")) for m in messages]
        data = b"".join(parts)
        samples = int(first.get("sampleCount") or 0)
        if samples < 1:
            raise RuntimeCallError("PushUpdate", "invalid_argument", "sample_count must be at least 1")
        self.federation.push(self.code, int(first.get("round") or 0), samples, data)
        return {"sizeBytes": str(len(data))}

    def ReportMetrics(self, req):
        with self.lock:
            self.metrics.extend(req.get("metrics") or [])
        return {}

    def ReportEvent(self, req):
        with self.lock:
            self.events.append(req)
        self.federation.log(f"{self.code}: event {req.get('kind')}: {req.get('message')}")
        return {}

    def WriteLog(self, req):
        for line in req.get("lines") or []:
            self.federation.log(f"{self.code}: {line}")
        return {}


def pump(stream, prefix, tail):
    for raw in iter(stream.readline, b""):
        line = raw.decode("utf-8", "replace").rstrip()
        tail.append(line)
        del tail[:-40]
        print(f"{prefix}: {line}", file=sys.stderr, flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", default=os.path.join(REPO, "workloads", "train-torch", "train.py"))
    parser.add_argument("--trusts", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--gpus", type=int, default=int(os.environ.get("FLIP_STUB_GPUS", "0")))
    parser.add_argument("--config", default="{}", help="the model's config JSON")
    parser.add_argument("--images", default="", help="a directory of image files (.npy, .nii, .nii.gz) every trust serves")
    parser.add_argument("--cohort", default="", help='the cohort every trust serves, as JSON: {"columns": [...], "rows": [[...], ...]}')
    parser.add_argument("--evaluate", action="store_true", help="an evaluation job: the workloads report metrics and push nothing")
    parser.add_argument("--weights", default="", help="a safetensors file: the global weights of round 1")
    parser.add_argument("--save-weights", default="", help="where to write the final global weights (safetensors)")
    parser.add_argument("--timeout", type=float, default=480.0, help="seconds before the run is failed")
    parser.add_argument("--require-cuda", action="store_true", help="fail unless every workload reports training on CUDA")
    args = parser.parse_args()
    json.loads(args.config)
    if not 1 <= args.trusts <= len(TRUST_CODES):
        parser.error(f"--trusts must be 1 to {len(TRUST_CODES)}")

    started = time.monotonic()
    log = lambda line: print(f"stub: {line}", file=sys.stderr, flush=True)  # noqa: E731
    codes = TRUST_CODES[: args.trusts]
    cohort = json.loads(args.cohort) if args.cohort else None
    weights = None
    if args.weights:
        with open(args.weights, "rb") as f:
            weights = f.read()
        st.loads(weights)
    federation = Federation(codes, args.rounds, log, evaluate=args.evaluate, weights=weights)
    workdir = tempfile.mkdtemp(prefix="flip-stub-")
    gateways, servers, procs, tails, pumps = {}, [], {}, {}, []
    try:
        for code in codes:
            token = secrets.token_hex(16)
            path = os.path.join(workdir, f"{code}.sock")
            gateways[code] = TrustGateway(federation, code, args, args.images, cohort)
            servers.append(RuntimeServer(path, token, gateways[code]))
            env = dict(os.environ, FLIP_RUNTIME_SOCKET=path, FLIP_RUNTIME_TOKEN=token, PYTHONPATH=os.path.join(REPO, "sdk", "python"), PYTHONUNBUFFERED="1", PYTHONDONTWRITEBYTECODE="1")
            workload = os.path.abspath(args.workload)
            procs[code] = subprocess.Popen([sys.executable, "-B", workload], cwd=os.path.dirname(workload), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            tails[code] = []
            t = threading.Thread(target=pump, args=(procs[code].stdout, code, tails[code]), daemon=True)
            t.start()
            pumps.append(t)
        deadline = started + args.timeout
        exits = {}
        while len(exits) < len(procs):
            for code, proc in procs.items():
                if code not in exits and proc.poll() is not None:
                    exits[code] = proc.returncode
                    if proc.returncode != 0:
                        federation.abort(f"the workload at {code} exited {proc.returncode}")
            if time.monotonic() > deadline:
                federation.abort(f"timed out after {args.timeout:.0f} s")
                for code, proc in procs.items():
                    if proc.poll() is None:
                        proc.kill()
                break
            time.sleep(0.05)
        for t in pumps:
            t.join(5)
    finally:
        for s in servers:
            s.close()
        os.rmdir(workdir)

    if args.save_weights and federation.weights is not None:
        with open(args.save_weights, "wb") as f:
            f.write(federation.weights)
    summary = summarise(args, federation, gateways, procs, tails, time.monotonic() - started)
    print(json.dumps(summary), flush=True)
    return 0 if summary["ok"] else 1


def summarise(args, federation, gateways, procs, tails, seconds):
    per_round = []
    for rnd in range(1, args.rounds + 1):
        # The last epoch's loss and accuracy at each trust, averaged over trusts.
        last = {}
        for code, g in gateways.items():
            for m in g.metrics:
                if m.get("round") == rnd and m.get("label") in ("loss", "accuracy"):
                    last[(code, m["label"])] = m["value"]
        entry = {"round": rnd}
        for label in ("loss", "accuracy"):
            values = [v for (_, lab), v in last.items() if lab == label]
            if values:
                entry[label] = round(sum(values) / len(values), 4)
        if rnd <= len(federation.round_seconds):
            entry["seconds"] = round(federation.round_seconds[rnd - 1], 3)
        per_round.append(entry)
    devices = {}
    for code, g in gateways.items():
        ev = next((e for e in g.events if e.get("kind") == "device"), None)
        devices[code] = (ev or {}).get("details", {})
    used_cuda = bool(devices) and all(d.get("device") == "cuda" for d in devices.values())
    exits = {code: p.returncode for code, p in procs.items()}
    ok = federation.done and not federation.failed and all(c == 0 for c in exits.values()) and (used_cuda or not args.require_cuda)
    summary = {
        "ok": ok,
        "workload": os.path.relpath(os.path.abspath(args.workload), REPO),
        "trusts": len(gateways),
        "rounds": args.rounds,
        "rounds_completed": len(federation.round_seconds),
        "mode": "evaluate" if args.evaluate else "train",
        "gpus": args.gpus,
        "used_cuda": used_cuda,
        "device_name": next((d.get("name") for d in devices.values() if d.get("name")), None),
        "devices": devices,
        "per_round": per_round,
        "seconds": round(seconds, 2),
        "exit_codes": exits,
        "python": sys.version.split()[0],
    }
    if federation.failed:
        summary["error"] = federation.failed
    if args.require_cuda and not used_cuda:
        summary["error"] = summary.get("error") or "a workload did not train on CUDA"
    if not ok:
        summary["output_tail"] = {code: tail[-15:] for code, tail in tails.items()}
    return summary


if __name__ == "__main__":
    sys.exit(main())
