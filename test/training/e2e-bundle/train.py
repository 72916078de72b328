"""A researcher's own workload, shipped in the model's files (the image runs /flip/bundle/train.py).

Each trust adds its delta to the global weights and reports its sample count, so the hub's averages can be
checked exactly; `pause_s` in the config keeps each round busy long enough to restart things under it.
"""
import time

import numpy as np

from flip_runtime import Runtime, from_numpy, to_numpy

DELTA = {"north": 1.0, "south": 3.0}
SAMPLES = {"north": 100, "south": 300}

rt = Runtime()
cfg = rt.config()
pause = float(cfg.config.get("pause_s", 0))
for rnd in rt.rounds():
    w = to_numpy(rnd.weights)["w"] if rnd.weights else np.zeros(16, dtype=np.float32)
    rt.metric("loss", 1.0 / rnd.number, round=rnd.number)
    time.sleep(pause)
    rt.push_update(rnd.number, from_numpy({"w": (w + DELTA.get(cfg.trust_code, 2.0)).astype(np.float32)}), samples=SAMPLES.get(cfg.trust_code, 100))
