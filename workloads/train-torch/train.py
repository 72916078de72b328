"""FLIP's reference PyTorch workload: a small CNN on the trust's images, averaged across trusts.

It trains on CUDA when the job was given GPUs and the container sees one, else on the CPU with one
thread. Images come from the runtime API (.npy arrays; NIfTI when nibabel is installed); without any,
it makes synthetic ones, so it always runs.

Config (the model's config JSON; all optional):
  local_epochs   passes over the local images per round (default 1)
  learning_rate  SGD step size (default 0.05); batch_size (default 16)
  image_size     images are resized to this square (default 64)
  labels         {image_id or study_key: class}; without it a proxy label is used (mean intensity above
                 the trust's median), so the example runs on any images
  max_images     most images read (default 512); samples: synthetic images (default 256)
  classes        number of classes (default 2), the same at every trust
  seed           seed of the initial weights, the same at every trust (default 0)
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import gzip  # noqa: E402
import hashlib  # noqa: E402
import io  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from flip_runtime import Runtime, RuntimeCallError, from_torch, to_torch  # noqa: E402


class SmallCNN(nn.Module):
    """Three conv blocks and a linear head: about 6k parameters, BatchNorm included."""

    def __init__(self, classes=2, width=8):
        super().__init__()
        blocks = []
        channels = 1
        for out in (width, 2 * width, 4 * width):
            blocks += [nn.Conv2d(channels, out, 3, padding=1), nn.BatchNorm2d(out), nn.ReLU(), nn.MaxPool2d(2)]
            channels = out
        self.features = nn.Sequential(*blocks[:-1], nn.AdaptiveAvgPool2d(1))
        self.head = nn.Linear(channels, classes)

    def forward(self, x):
        return self.head(self.features(x).flatten(1))


def trust_seed(trust_code):
    return int.from_bytes(hashlib.sha256(trust_code.encode()).digest()[:8], "little")


def synthetic_images(trust_code, count, size):
    """Noise, and in half the images a bright disc somewhere: class 1 has the disc."""
    rng = np.random.default_rng(trust_seed(trust_code))
    yy, xx = np.mgrid[0:size, 0:size]
    images = rng.normal(scale=0.6, size=(count, size, size)).astype(np.float32)
    labels = rng.integers(0, 2, size=count)
    for i in np.flatnonzero(labels):
        cy, cx = rng.uniform(size * 0.2, size * 0.8, size=2)
        r = rng.uniform(size * 0.08, size * 0.2)
        images[i] += ((yy - cy) ** 2 + (xx - cx) ** 2 < r * r).astype(np.float32) * 1.5
    return torch.from_numpy(images).unsqueeze(1), torch.from_numpy(labels).long()


def decode_image(data, fmt):
    """A 2D float array of an image file, or None for a format this workload does not read."""
    if fmt == "npy":
        arr = np.load(io.BytesIO(data), allow_pickle=False)
    elif fmt == "nifti":
        try:
            import nibabel
        except ImportError:
            return None
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        arr = np.asanyarray(nibabel.Nifti1Image.from_bytes(data).dataobj)
    else:
        return None
    arr = np.squeeze(np.asarray(arr, dtype=np.float32))
    while arr.ndim > 2:
        arr = arr[..., arr.shape[-1] // 2]
    return arr if arr.ndim == 2 and arr.size > 0 else None


def trust_images(rt, opts, size):
    """(images N×1×size×size, labels, description) from the runtime's images, or None when none are usable."""
    # Formats this workload decodes; DICOM instances (one slice each) are left to workloads that stack them.
    images = rt.images(formats=("nifti", "npy"))[: int(opts.get("max_images", 512))]
    arrays, ids = [], []
    for image in images:
        try:
            arr = decode_image(rt.read_image(image), image.format)
        except (ValueError, TypeError, OSError, EOFError) as e:
            # One unreadable file is skipped (and counted), not the end of the job.
            rt.log(f"train-torch: skipping {image.image_id}: {type(e).__name__}: {e}")
            arr = None
        if arr is not None:
            arrays.append(arr)
            ids.append(image)
    if len(arrays) < 2:
        return None
    means = np.array([a.mean() for a in arrays])
    resized = []
    for a in arrays:
        t = torch.from_numpy(np.ascontiguousarray(a))[None, None]
        t = F.interpolate(t, size=(size, size), mode="bilinear", align_corners=False)[0]
        resized.append((t - t.mean()) / (t.std() + 1e-6))
    given = opts.get("labels")
    if given:
        labels = [given.get(i.image_id, given.get(i.study_key)) for i in ids]
        if any(v is None for v in labels):
            missing = [i.image_id for i, v in zip(ids, labels) if v is None][:5]
            raise ValueError(f"config labels has no class for {missing} (give one per image_id or study_key)")
        description = "labels from the config"
    else:
        labels = (means > np.median(means)).astype(np.int64).tolist()
        description = "proxy labels (mean intensity above the median): give config labels for a real task"
    skipped = len(images) - len(arrays)
    return torch.stack(resized), torch.tensor(labels).long(), f"{len(arrays)} images ({skipped} skipped), {description}"


def pick_device(rt, cfg):
    if cfg.gpus > 0 and torch.cuda.is_available():
        device = torch.device("cuda")
        name = torch.cuda.get_device_name(device)
    else:
        if cfg.gpus > 0:
            rt.log(f"train-torch: the job asked for {cfg.gpus} GPU(s) but torch sees no CUDA device; training on the CPU")
        torch.set_num_threads(1)
        device = torch.device("cpu")
        name = "cpu"
    rt.event("device", 0, f"training on {device.type} ({name})", device=device.type, name=name, torch=torch.__version__)
    return device


def evaluate(model, x, y, device, batch_size):
    model.eval()
    loss, correct = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(y), batch_size):
            xb, yb = x[i : i + batch_size].to(device), y[i : i + batch_size].to(device)
            out = model(xb)
            loss += float(F.cross_entropy(out, yb, reduction="sum"))
            correct += int((out.argmax(1) == yb).sum())
    return loss / len(y), correct / len(y)


def main():
    rt = Runtime()
    cfg = rt.config()
    opts = cfg.config
    size = int(opts.get("image_size", 64))
    epochs = int(opts.get("local_epochs", 1))
    batch_size = int(opts.get("batch_size", 16))
    lr = float(opts.get("learning_rate", 0.05))
    device = pick_device(rt, cfg)
    try:
        found = trust_images(rt, opts, size)
    except RuntimeCallError as e:
        if e.code != "failed_precondition":
            raise
        rt.log(f"train-torch: no images here ({e.message})")
        found = None
    if found is None:
        count = int(opts.get("samples", 256))
        x, y = synthetic_images(cfg.trust_code, count, size)
        description = f"{count} synthetic images"
    else:
        x, y, description = found
    rt.log(f"train-torch at {cfg.trust_code}: {cfg.mode} on {device.type}, {description}")

    classes = int(opts.get("classes", 2))
    if int(y.max()) >= classes:
        raise ValueError(f"labels go up to {int(y.max())} but config classes is {classes}")
    torch.manual_seed(int(opts.get("seed", 0)))
    model = SmallCNN(classes=classes).to(device)
    for rnd in rt.rounds():
        if rnd.weights is not None:
            model.load_state_dict(to_torch(rnd.weights))
        if cfg.evaluate:
            loss, accuracy = evaluate(model, x, y, device, batch_size)
            rt.metrics([("loss", loss, rnd.number), ("accuracy", accuracy, rnd.number)])
            continue
        optimiser = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
        shuffle = torch.Generator().manual_seed(trust_seed(cfg.trust_code) % (1 << 63) + rnd.number)
        for epoch in range(epochs):
            started = time.monotonic()
            model.train()
            total, correct = 0.0, 0
            for idx in torch.randperm(len(y), generator=shuffle).split(batch_size):
                xb, yb = x[idx].to(device, non_blocking=True), y[idx].to(device, non_blocking=True)
                optimiser.zero_grad()
                out = model(xb)
                loss = F.cross_entropy(out, yb)
                loss.backward()
                optimiser.step()
                total += float(loss) * len(idx)
                correct += int((out.argmax(1) == yb).sum())
            step = ("epoch", (rnd.number - 1) * epochs + epoch + 1)
            rt.metrics(
                [
                    ("loss", total / len(y), rnd.number, step),
                    ("accuracy", correct / len(y), rnd.number, step),
                    ("epoch_seconds", time.monotonic() - started, rnd.number, step),
                ]
            )
        rt.push_update(rnd.number, from_torch(model.state_dict()), samples=len(y))


if __name__ == "__main__":
    main()
