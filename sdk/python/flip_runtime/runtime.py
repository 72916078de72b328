"""The runtime API (flip.runtime.v1.RuntimeService) as a workload uses it."""

import json
import math
import os
import time
from dataclasses import dataclass, field

from . import safetensors
from .client import ConnectClient, RuntimeCallError, b64decode, b64encode

SERVICE = "flip.runtime.v1.RuntimeService"
DEFAULT_SOCKET = "/flip/runtime/runtime.sock"
# Bytes of weights per PushUpdate message (the gateway sends GetGlobalWeights in chunks of the same size).
CHUNK_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Config:
    job_id: str
    project_id: str
    trust_code: str
    rounds: int
    # "train" or "evaluate".
    mode: str
    gpus: int
    current_round: int
    # The model's config, parsed ({} when it has none).
    config: dict

    @property
    def evaluate(self):
        return self.mode == "evaluate"


@dataclass(frozen=True)
class Round:
    number: int
    # name -> Tensor, or None when the round starts without weights (the workload initialises them).
    weights: object
    # The safetensors bytes as received (None without weights).
    raw: object = None


@dataclass(frozen=True)
class Cohort:
    columns: list
    # Rows of values in `columns` order, JSON-decoded (numbers, strings, booleans, None).
    rows: list = field(default_factory=list)

    def column(self, name):
        i = self.columns.index(name)
        return [r[i] for r in self.rows]

    def records(self):
        return [dict(zip(self.columns, r)) for r in self.rows]

    def __len__(self):
        return len(self.rows)


@dataclass(frozen=True)
class Image:
    """An image of the job's project at this trust: a de-identified DICOM instance ("dicom") or a NIfTI
    volume of a series ("nifti"). Keys are pseudonyms, stable within the project."""

    image_id: str
    format: str
    size_bytes: int
    study_key: str
    series_key: str = ""
    modality: str = ""


def _uint(value):
    """A proto3 JSON integer (uint64 arrives as a string; zero values are left out)."""
    return int(value) if value not in (None, "") else 0


def _decode_value(text):
    try:
        return json.loads(text)
    except ValueError:
        return text


class Runtime:
    """The trust gateway's runtime API for this job: config, cohort, images, weights, updates, metrics, logs.

    `socket` and `token` default to $FLIP_RUNTIME_SOCKET (else /flip/runtime/runtime.sock) and
    $FLIP_RUNTIME_TOKEN. Calls wait out a restarting gateway for up to `retry_seconds`; other errors raise
    RuntimeCallError with Connect's `code` and the gateway's `message`.
    """

    def __init__(self, socket=None, token=None, retry_seconds=600.0):
        socket = socket or os.environ.get("FLIP_RUNTIME_SOCKET") or DEFAULT_SOCKET
        token = token if token is not None else os.environ.get("FLIP_RUNTIME_TOKEN", "")
        if not token:
            raise ValueError("no runtime token: set FLIP_RUNTIME_TOKEN (the gateway sets it in the workload's container)")
        self.client = ConnectClient(socket, token, SERVICE, retry_seconds=retry_seconds)

    def config(self):
        r = self.client.unary("GetConfig", {})
        text = r.get("configJson", r.get("config_json", "")) or ""
        parsed = json.loads(text) if text.strip() else {}
        return Config(
            job_id=r.get("jobId", ""),
            project_id=r.get("projectId", ""),
            trust_code=r.get("trustCode", ""),
            rounds=_uint(r.get("rounds")),
            mode=r.get("mode", "") or "train",
            gpus=_uint(r.get("gpus")),
            current_round=_uint(r.get("currentRound")),
            config=parsed if isinstance(parsed, dict) else {"value": parsed},
        )

    def weights(self, round=0):
        """Waits for round `round` (0: the next one this trust should train) and returns it as a Round,
        or None when the job has ended."""
        while True:
            try:
                messages = self.client.server_stream("GetGlobalWeights", {"round": round})
                break
            except RuntimeCallError as e:
                # The wait for the round ran out before the hub opened it: ask again.
                if e.code != "deadline_exceeded":
                    raise
                time.sleep(1.0)
        if any(m.get("done") for m in messages):
            return None
        if not messages:
            raise RuntimeCallError("GetGlobalWeights", "internal", "the gateway ended the stream without a round or done")
        number = _uint(messages[0].get("round"))
        size = _uint(messages[0].get("sizeBytes"))
        raw = b"".join(b64decode(m["data"]) for m in messages if m.get("data"))
        if len(raw) != size:
            raise RuntimeCallError("GetGlobalWeights", "data_loss", f"round {number}: received {len(raw)} bytes of weights, announced {size}")
        if size == 0:
            return Round(number, None, None)
        return Round(number, safetensors.loads(raw), raw)

    def rounds(self):
        """The job's rounds, one at a time, until it ends: ask for the next one only when the last is done."""
        while True:
            r = self.weights(0)
            if r is None:
                return
            yield r

    def push_update(self, round, tensors, samples):
        """Sends this trust's update for `round`: `tensors` (name -> Tensor, or safetensors bytes) and the
        number of samples it was trained on (its weight in the average). Returns the bytes accepted."""
        data = tensors if isinstance(tensors, (bytes, bytearray, memoryview)) else safetensors.dumps(tensors)
        data = bytes(data)
        if int(samples) < 1:
            raise ValueError("samples must be at least 1: it weighs the update in the average")

        attempts = []

        def messages():
            attempts.append(1)
            yield {"round": int(round), "sampleCount": str(int(samples)), "data": b64encode(data[:CHUNK_BYTES])}
            for at in range(CHUNK_BYTES, len(data), CHUNK_BYTES):
                yield {"data": b64encode(data[at : at + CHUNK_BYTES])}

        try:
            r = self.client.client_stream("PushUpdate", messages)
        except RuntimeCallError as e:
            # A retry after a cut connection finds the round finished: the gateway took the first attempt
            # (or the round closed while it restarted). Either way the next round is what comes next.
            if e.code == "failed_precondition" and len(attempts) > 1:
                self.client.log(f"flip_runtime: PushUpdate for round {round} was retried and the round is done at the gateway ({e.message})")
                return len(data)
            raise
        return _uint(r.get("sizeBytes"))

    def metric(self, label, value, round=0, x=None):
        """Reports one metric value; `x` is an optional (x_label, x_value) pair, e.g. ("epoch", 3)."""
        self.metrics([(label, value, round, x)])

    def metrics(self, values):
        """Reports several values in one call: (label, value, round, x) tuples (round and x optional)."""
        out = []
        for v in values:
            v = tuple(v)
            label, value, rnd, x = v + (0, None)[len(v) - 2 :]
            m = {"label": str(label), "value": float(value), "round": int(rnd or 0)}
            if not math.isfinite(m["value"]):
                raise ValueError(f"metric {label}: {value} is not a finite number")
            if x is not None:
                m["xLabel"], m["xValue"] = str(x[0]), float(x[1])
            out.append(m)
        if out:
            self.client.unary("ReportMetrics", {"metrics": out})

    def event(self, kind, round=0, message="", **details):
        """Reports a typed event (e.g. "device", "checkpoint") with string details."""
        self.client.unary("ReportEvent", {"kind": kind, "round": int(round), "message": message, "details": {k: str(v) for k, v in details.items()}})

    def log(self, *lines):
        """Writes log lines that the trust's policy may forward to the researcher."""
        if lines:
            self.client.unary("WriteLog", {"lines": [str(line) for line in lines]})

    def cohort(self, batch_size=1000):
        """The frozen cohort's rows (values JSON-decoded). Raises RuntimeCallError("failed_precondition")
        when the trust cannot serve them."""
        columns = []
        rows = []
        for m in self.client.server_stream("GetCohort", {"batchSize": int(batch_size)}, timeout=self.client.timeout):
            columns = m.get("columns") or columns
            rows.extend([_decode_value(v) for v in (r.get("values") or [])] for r in m.get("rows") or [])
        return Cohort(columns, rows)

    def images(self, formats=None):
        """The project's images here (only studies in the frozen cohort); `formats` keeps only those, e.g. ("nifti",)."""
        r = self.client.unary("ListImages", {})
        return [
            Image(
                image_id=i.get("imageId", ""),
                format=i.get("format", ""),
                size_bytes=_uint(i.get("sizeBytes")),
                study_key=i.get("studyKey", ""),
                series_key=i.get("seriesKey", ""),
                modality=i.get("modality", ""),
            )
            for i in r.get("images") or []
            if formats is None or i.get("format", "") in formats
        ]

    def read_image(self, image_id):
        """An image's bytes."""
        image_id = image_id.image_id if isinstance(image_id, Image) else image_id
        messages = self.client.server_stream("ReadImage", {"imageId": image_id}, timeout=self.client.timeout)
        return b"".join(b64decode(m["data"]) for m in messages if m.get("data"))
