"""FLIP's reference numpy workload: logistic regression on the trust's cohort, averaged across trusts.

Config (the model's config JSON; all optional):
  local_epochs   full-batch gradient steps per round (default 5)
  learning_rate  step size (default 0.5)
  data           "cohort" (default): the frozen cohort's numeric columns; "synthetic": generated rows
  label_column   the cohort column to predict (a boolean or 0/1 column; other numbers are split at
                 their median); default: the last numeric column, split at its median
  feature_columns  the cohort columns to train on (default: every numeric column but *_id and the label)
  samples, features  the size of synthetic data (default 200 rows, 4 features)
"""

import os

# One thread: the trust's CPU limit is what it is, and BLAS threads only fight over it.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import hashlib  # noqa: E402

import numpy as np  # noqa: E402

from flip_runtime import Runtime, RuntimeCallError, from_numpy, to_numpy  # noqa: E402


def synthetic(trust_code, rows, features):
    """Rows that depend only on the trust's code: the same task everywhere, each trust's sample shifted."""
    truth = np.random.default_rng(0).normal(size=features)
    seed = int.from_bytes(hashlib.sha256(trust_code.encode()).digest()[:8], "little")
    rng = np.random.default_rng(seed)
    x = rng.normal(loc=rng.normal(scale=0.5, size=features), size=(rows, features))
    y = (x @ truth + rng.normal(scale=0.5, size=rows) > 0).astype(np.float64)
    return x, y


def _numeric(values):
    """Numbers, booleans and nulls only (at least one value): a column a linear model can use."""
    return all(v is None or isinstance(v, (int, float)) for v in values) and any(v is not None for v in values)


def _as_floats(values):
    col = np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)
    fill = np.nanmean(col) if np.any(~np.isnan(col)) else 0.0
    col[np.isnan(col)] = fill
    return col


def _binary(col):
    """0/1 labels: the column itself when it is already 0/1, else whether each value is above the median."""
    if set(np.unique(col)) <= {0.0, 1.0}:
        return col
    return (col > np.median(col)).astype(np.float64)


def cohort_data(cohort, opts):
    """(x, y, description) from the cohort's numeric columns, or None when it has none to learn from."""
    columns = {name: cohort.column(name) for name in cohort.columns}
    numeric = [n for n in cohort.columns if _numeric(columns[n])]
    label = opts.get("label_column")
    if label is not None and label not in numeric:
        raise ValueError(f"label_column {label!r} is not a numeric column of the cohort (numeric columns: {', '.join(numeric) or 'none'})")
    wanted = opts.get("feature_columns")
    if wanted is not None:
        missing = [c for c in wanted if c not in numeric]
        if missing:
            raise ValueError(f"feature_columns {missing} are not numeric columns of the cohort (numeric columns: {', '.join(numeric) or 'none'})")
        features = list(wanted)
    else:
        features = [n for n in numeric if not n.endswith("_id")]
    if label is None:
        if not features:
            return None
        label = features[-1]
    features = [f for f in features if f != label] or [label]
    if len(cohort) < 2:
        return None
    x = np.stack([_as_floats(columns[f]) for f in features], axis=1)
    y = _binary(_as_floats(columns[label]))
    return x, y, f"cohort: {len(features)} features ({', '.join(features)}), label {label}"


def load_data(rt, cfg):
    opts = cfg.config
    source = opts.get("data", "cohort")
    if source not in ("cohort", "synthetic"):
        raise ValueError(f'config "data" must be "cohort" or "synthetic", not {source!r}')
    rows, features = int(opts.get("samples", 200)), int(opts.get("features", 4))
    if source == "cohort":
        try:
            found = cohort_data(rt.cohort(), opts)
            if found:
                x, y, description = found
                return standardise(x), y, description
            rt.log("train-numpy: the cohort has no numeric columns or too few rows to learn from; training on synthetic data")
        except RuntimeCallError as e:
            if e.code != "failed_precondition":
                raise
            rt.log(f"train-numpy: the cohort is not available here ({e.message}); training on synthetic data")
    x, y = synthetic(cfg.trust_code, rows, features)
    return standardise(x), y, f"synthetic: {rows} rows, {features} features"


def standardise(x):
    std = x.std(axis=0)
    return (x - x.mean(axis=0)) / np.where(std > 0, std, 1.0)


def loss_and_accuracy(w, b, x, y):
    p = 1.0 / (1.0 + np.exp(-(x @ w + b)))
    eps = 1e-12
    loss = -np.mean(y * np.log(p + eps) + (1 - y) * np.log(1 - p + eps))
    return float(loss), float(np.mean((p > 0.5) == (y > 0.5))), p


def model_of(weights, features):
    """(w, b) from the round's global weights, or zeros for a round that starts without any."""
    if weights is None:
        return np.zeros(features), 0.0
    arrays = to_numpy(weights)
    if "weight" not in arrays or "bias" not in arrays:
        raise ValueError(f"the global weights hold {sorted(arrays)}, not weight and bias: were they made by another workload?")
    w = arrays["weight"].astype(np.float64).reshape(-1)
    if w.shape[0] != features:
        raise ValueError(f"the global weights have {w.shape[0]} features, this trust's data has {features}: do the trusts' cohorts have the same numeric columns?")
    return w, float(arrays["bias"].reshape(-1)[0])


def main():
    rt = Runtime()
    cfg = rt.config()
    opts = cfg.config
    epochs = int(opts.get("local_epochs", 5))
    lr = float(opts.get("learning_rate", 0.5))
    x, y, description = load_data(rt, cfg)
    rt.log(f"train-numpy at {cfg.trust_code}: {cfg.mode}, {description}")
    for rnd in rt.rounds():
        w, b = model_of(rnd.weights, x.shape[1])
        if cfg.evaluate:
            loss, accuracy, _ = loss_and_accuracy(w, b, x, y)
            rt.metrics([("loss", loss, rnd.number), ("accuracy", accuracy, rnd.number)])
            continue
        # Epochs take microseconds here: their metrics go in one call per round.
        values = []
        for epoch in range(epochs):
            _, _, p = loss_and_accuracy(w, b, x, y)
            w = w - lr * (x.T @ (p - y)) / len(y)
            b = b - lr * float(np.mean(p - y))
            loss, accuracy, _ = loss_and_accuracy(w, b, x, y)
            step = ("epoch", (rnd.number - 1) * epochs + epoch + 1)
            values += [("loss", loss, rnd.number, step), ("accuracy", accuracy, rnd.number, step)]
        rt.metrics(values)
        update = {"weight": w.astype(np.float32).reshape(1, -1), "bias": np.array([b], dtype=np.float32)}
        rt.push_update(rnd.number, from_numpy(update), samples=len(y))


if __name__ == "__main__":
    main()
