import base64
import json
import os
import struct
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from flip_runtime import Runtime, RuntimeCallError, Tensor, dumps, loads  # noqa: E402
from flip_runtime.testing import RuntimeServer  # noqa: E402

WEIGHTS = dumps({"w": Tensor("F32", (2,), struct.pack("<2f", 0.5, -0.5)), "steps": Tensor("I64", (), struct.pack("<q", 4))})


class Gateway:
    """A job of three rounds: the first without weights, the second after a wait that timed out once."""

    def __init__(self):
        self.rounds = [{"round": 1}, "deadline", WEIGHTS, None]
        self.asked = []
        self.updates = []
        self.metrics = []
        self.events = []
        self.lines = []
        self.cohort_error = None

    def GetConfig(self, req):
        return {"jobId": "j1", "projectId": "p1", "trustCode": "north", "rounds": 2, "configJson": '{"local_epochs": 3}', "mode": "train", "gpus": 1}

    def GetGlobalWeights(self, req):
        self.asked.append(req)
        step = self.rounds.pop(0)
        if step is None:
            yield {"done": True}
        elif step == "deadline":
            raise RuntimeCallError("GetGlobalWeights", "deadline_exceeded", "no round opened in time")
        elif isinstance(step, dict):
            yield step
        else:
            half = len(step) // 2
            yield {"round": 2, "sizeBytes": str(len(step)), "data": base64.b64encode(step[:half]).decode()}
            yield {"round": 2, "data": base64.b64encode(step[half:]).decode()}

    def PushUpdate(self, messages):
        messages = list(messages)
        data = b"".join(base64.b64decode(m.get("data", "")) for m in messages)
        self.updates.append((messages[0].get("round"), messages[0].get("sampleCount"), len(messages), data))
        return {"sizeBytes": str(len(data))}

    def ReportMetrics(self, req):
        self.metrics.extend(req["metrics"])
        return {}

    def ReportEvent(self, req):
        self.events.append(req)
        return {}

    def WriteLog(self, req):
        self.lines.extend(req["lines"])
        return {}

    def GetCohort(self, req):
        if self.cohort_error:
            raise RuntimeCallError("GetCohort", "failed_precondition", self.cohort_error)
        yield {"columns": ["person_id", "age", "sex", "smoker"], "rows": [{"values": ["1", "54", '"F"', "true"]}, {"values": ["2", "61.5", '"M"', "null"]}]}
        yield {"columns": ["person_id", "age", "sex", "smoker"], "rows": [{"values": ["3", "40", '"F"', "false"]}]}

    def ListImages(self, req):
        return {"images": [{"imageId": "s1/a.npy", "format": "npy", "sizeBytes": "128", "studyKey": "s1"}]}

    def ReadImage(self, req):
        if req["imageId"] != "s1/a.npy":
            raise RuntimeCallError("ReadImage", "not_found", f"no image {req['imageId']!r}")
        yield {"data": base64.b64encode(b"\x93NUMPY").decode()}
        yield {"data": base64.b64encode(b"rest").decode()}


class RuntimeAPI(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="flip-sdk-")
        path = os.path.join(self.dir, "rt.sock")
        self.gateway = Gateway()
        self.server = RuntimeServer(path, "tok", self.gateway)
        self.env = dict(os.environ)
        os.environ["FLIP_RUNTIME_SOCKET"] = path
        os.environ["FLIP_RUNTIME_TOKEN"] = "tok"
        self.rt = Runtime(retry_seconds=5)

    def tearDown(self):
        os.environ.clear()
        os.environ.update(self.env)
        self.server.close()
        os.rmdir(self.dir)

    def test_config_is_read_from_the_environment_s_socket_and_parsed(self):
        cfg = self.rt.config()
        self.assertEqual((cfg.job_id, cfg.project_id, cfg.trust_code, cfg.rounds, cfg.mode, cfg.gpus, cfg.current_round), ("j1", "p1", "north", 2, "train", 1, 0))
        self.assertEqual(cfg.config, {"local_epochs": 3})
        self.assertFalse(cfg.evaluate)

    def test_rounds_yield_until_done_with_weights_when_the_round_has_them(self):
        seen = []
        for rnd in self.rt.rounds():
            seen.append((rnd.number, None if rnd.weights is None else sorted(rnd.weights)))
            if rnd.weights:
                self.assertEqual(rnd.weights["steps"].shape, ())
                self.assertEqual(rnd.raw, WEIGHTS)
        self.assertEqual(seen, [(1, None), (2, ["steps", "w"])])
        self.assertEqual(self.gateway.asked, [{"round": 0}] * 4, "round 0 each time; a timed-out wait is asked again")

    def test_an_update_is_pushed_in_chunks_with_round_and_sample_count_first(self):
        big = {"w": Tensor("U8", (3_000_000,), bytes(3_000_000))}
        self.assertEqual(self.rt.push_update(2, big, samples=120), len(dumps(big)))
        round_, samples, messages, data = self.gateway.updates[0]
        self.assertEqual((round_, samples, messages), (2, "120", 3))
        self.assertEqual(loads(data)["w"].shape, (3_000_000,))

    def test_a_push_retried_after_a_cut_connection_that_finds_the_round_done_counts_as_sent(self):
        calls = []
        lines = []

        def push(messages):
            list(messages)
            calls.append(1)
            if len(calls) == 1:
                raise ConnectionResetError("the gateway restarted after it stored the update")
            raise RuntimeCallError("PushUpdate", "failed_precondition", "round 1 is over")

        self.gateway.PushUpdate = push
        self.rt.client.log = lines.append
        self.assertEqual(self.rt.push_update(1, WEIGHTS, samples=3), len(WEIGHTS))
        self.assertEqual(len(calls), 2)
        self.assertIn("round is done at the gateway", lines[-1])

    def test_a_push_refused_at_the_first_attempt_raises(self):
        def push(messages):
            # Read the whole request first, as the gateway does: a refusal sent while the client is still
            # writing can reach it as a broken pipe instead (which it retries), and this test is about the refusal.
            list(messages)
            raise RuntimeCallError("PushUpdate", "failed_precondition", "round 1 is over")

        self.gateway.PushUpdate = push
        with self.assertRaises(RuntimeCallError) as ctx:
            self.rt.push_update(1, WEIGHTS, samples=3)
        self.assertEqual(ctx.exception.message, "round 1 is over")

    def test_an_update_needs_at_least_one_sample(self):
        with self.assertRaisesRegex(ValueError, "at least 1"):
            self.rt.push_update(1, WEIGHTS, samples=0)

    def test_metrics_events_and_logs_reach_the_gateway(self):
        self.rt.metric("loss", 0.25, round=2, x=("epoch", 3))
        self.rt.metrics([("accuracy", 0.9), ("auc", 0.8, 2)])
        self.rt.event("device", 1, "training on cpu", device="cpu", threads=1)
        self.rt.log("hello", "world")
        self.assertEqual(
            self.gateway.metrics,
            [
                {"label": "loss", "value": 0.25, "round": 2, "xLabel": "epoch", "xValue": 3.0},
                {"label": "accuracy", "value": 0.9, "round": 0},
                {"label": "auc", "value": 0.8, "round": 2},
            ],
        )
        self.assertEqual(self.gateway.events, [{"kind": "device", "round": 1, "message": "training on cpu", "details": {"device": "cpu", "threads": "1"}}])
        self.assertEqual(self.gateway.lines, ["hello", "world"])

    def test_a_non_finite_metric_is_refused_before_it_is_sent(self):
        with self.assertRaisesRegex(ValueError, "finite"):
            self.rt.metric("loss", float("nan"))

    def test_the_cohort_comes_back_decoded_across_batches(self):
        cohort = self.rt.cohort(batch_size=2)
        self.assertEqual(cohort.columns, ["person_id", "age", "sex", "smoker"])
        self.assertEqual(cohort.rows, [[1, 54, "F", True], [2, 61.5, "M", None], [3, 40, "F", False]])
        self.assertEqual(cohort.column("age"), [54, 61.5, 40])
        self.assertEqual(cohort.records()[0], {"person_id": 1, "age": 54, "sex": "F", "smoker": True})

    def test_a_cohort_the_trust_cannot_serve_raises_failed_precondition(self):
        self.gateway.cohort_error = "no data-access service"
        with self.assertRaises(RuntimeCallError) as ctx:
            self.rt.cohort()
        self.assertEqual(ctx.exception.code, "failed_precondition")

    def test_images_are_listed_and_read(self):
        images = self.rt.images()
        self.assertEqual([(i.image_id, i.format, i.size_bytes, i.study_key) for i in images], [("s1/a.npy", "npy", 128, "s1")])
        self.assertEqual(self.rt.read_image(images[0]), b"\x93NUMPYrest")
        self.assertEqual(self.rt.images(formats=("nifti",)), [])
        with self.assertRaises(RuntimeCallError) as ctx:
            self.rt.read_image("nope")
        self.assertEqual(ctx.exception.code, "not_found")

    def test_a_runtime_without_a_token_says_which_variable_to_set(self):
        os.environ.pop("FLIP_RUNTIME_TOKEN")
        with self.assertRaisesRegex(ValueError, "FLIP_RUNTIME_TOKEN"):
            Runtime()


if __name__ == "__main__":
    unittest.main()
