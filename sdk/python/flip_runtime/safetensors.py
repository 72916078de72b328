"""The safetensors file format with the standard library, plus numpy and torch conversions when installed.

Layout: an 8-byte little-endian header length N; N bytes of JSON (per tensor: dtype, shape, data_offsets
[begin, end) relative to the data section; optional "__metadata__" of string values), padded with
spaces to a multiple of 8; then the tensors' raw little-endian bytes, back to back.
"""

import json
import struct
from dataclasses import dataclass

# Bytes per element.
DTYPE_SIZES = {
    "F64": 8,
    "F32": 4,
    "F16": 2,
    "BF16": 2,
    "F8_E4M3": 1,
    "F8_E5M2": 1,
    "I64": 8,
    "I32": 4,
    "I16": 2,
    "I8": 1,
    "U64": 8,
    "U32": 4,
    "U16": 2,
    "U8": 1,
    "BOOL": 1,
}

# A header larger than this is refused: real ones are kilobytes, and the length comes from the file.
MAX_HEADER_BYTES = 100 * 1024 * 1024


class SafetensorsError(ValueError):
    """The bytes are not a valid safetensors file (the message says where)."""


@dataclass(frozen=True)
class Tensor:
    """One tensor: its dtype ("F32", "I64", ...), its shape ([] for a scalar) and its raw little-endian bytes."""

    dtype: str
    shape: tuple
    data: bytes

    def __post_init__(self):
        if self.dtype not in DTYPE_SIZES:
            raise SafetensorsError(f"unknown dtype {self.dtype!r} (one of {', '.join(DTYPE_SIZES)})")
        shape = tuple(self.shape)
        if any(not isinstance(d, int) or isinstance(d, bool) or d < 0 for d in shape):
            raise SafetensorsError(f"shape {list(shape)} is not a list of non-negative integers")
        object.__setattr__(self, "shape", shape)
        if len(self.data) != self.numel * DTYPE_SIZES[self.dtype]:
            raise SafetensorsError(f"{self.dtype} tensor of shape {list(shape)} needs {self.numel * DTYPE_SIZES[self.dtype]} bytes, got {len(self.data)}")

    @property
    def numel(self):
        n = 1
        for d in self.shape:
            n *= d
        return n

    @property
    def nbytes(self):
        return len(self.data)


def dumps(tensors, metadata=None):
    """The safetensors bytes of `tensors` (name -> Tensor) with optional string metadata."""
    header = {}
    if metadata:
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
            raise SafetensorsError("__metadata__ must map strings to strings")
        header["__metadata__"] = dict(metadata)
    # Larger elements first (then by name), so every tensor starts aligned to its element size.
    names = sorted(tensors, key=lambda n: (-DTYPE_SIZES[tensors[n].dtype], n))
    offset = 0
    for name in names:
        t = tensors[name]
        if not isinstance(t, Tensor):
            raise SafetensorsError(f"tensor {name!r} is a {type(t).__name__}, not a Tensor (convert with from_numpy or from_torch)")
        if name == "__metadata__":
            raise SafetensorsError("no tensor may be called __metadata__")
        header[name] = {"dtype": t.dtype, "shape": list(t.shape), "data_offsets": [offset, offset + t.nbytes]}
        offset += t.nbytes
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    return b"".join([struct.pack("<Q", len(text)), text] + [tensors[n].data for n in names])


def loads(data):
    """The tensors (name -> Tensor, in file order) of safetensors bytes; SafetensorsError when malformed."""
    return _parse(data)[0]


def read_metadata(data):
    """The `__metadata__` of safetensors bytes ({} when there is none)."""
    return _parse(data)[1]


def save_file(tensors, path, metadata=None):
    with open(path, "wb") as f:
        f.write(dumps(tensors, metadata))


def load_file(path):
    with open(path, "rb") as f:
        return loads(f.read())


def _parse(data):
    data = memoryview(data)
    if len(data) < 8:
        raise SafetensorsError(f"{len(data)} bytes: too short for the 8-byte header length")
    (n,) = struct.unpack_from("<Q", data, 0)
    if n > MAX_HEADER_BYTES or 8 + n > len(data):
        raise SafetensorsError(f"header length {n} does not fit in {len(data)} bytes")
    try:
        header = json.loads(bytes(data[8 : 8 + n]).decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise SafetensorsError(f"the header is not JSON: {e}") from None
    if not isinstance(header, dict):
        raise SafetensorsError("the header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise SafetensorsError("__metadata__ must be an object of strings")
    body = data[8 + n :]
    extents = []
    for name, entry in header.items():
        if not isinstance(entry, dict):
            raise SafetensorsError(f"tensor {name!r}: not an object with dtype, shape and data_offsets")
        dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
        if dtype not in DTYPE_SIZES:
            raise SafetensorsError(f"tensor {name!r}: unknown dtype {dtype!r}")
        if not isinstance(shape, list) or any(not isinstance(d, int) or isinstance(d, bool) or d < 0 for d in shape):
            raise SafetensorsError(f"tensor {name!r}: shape {shape!r} is not a list of non-negative integers")
        if not isinstance(offsets, list) or len(offsets) != 2 or any(not isinstance(o, int) or isinstance(o, bool) for o in offsets):
            raise SafetensorsError(f"tensor {name!r}: data_offsets {offsets!r} is not [begin, end]")
        begin, end = offsets
        numel = 1
        for d in shape:
            numel *= d
        if not 0 <= begin <= end <= len(body) or end - begin != numel * DTYPE_SIZES[dtype]:
            raise SafetensorsError(f"tensor {name!r}: data_offsets [{begin}, {end}] do not hold {dtype} {shape} in a data section of {len(body)} bytes")
        extents.append((begin, end, name, dtype, shape))
    extents.sort()
    at = 0
    for begin, end, name, _, _ in extents:
        if begin != at:
            raise SafetensorsError(f"tensor {name!r} starts at {begin}, expected {at}: tensors must cover the data section without gaps or overlaps")
        at = end
    if at != len(body):
        raise SafetensorsError(f"the data section has {len(body)} bytes but the tensors use {at}")
    tensors = {name: Tensor(dtype, tuple(shape), bytes(body[begin:end])) for begin, end, name, dtype, shape in extents}
    return tensors, metadata


# numpy -----------------------------------------------------------------------------------------------

_NUMPY_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1", "U64": "<u8", "U32": "<u4", "U16": "<u2", "U8": "u1", "BOOL": "?"}


def to_numpy(value):
    """A numpy array of a Tensor (BF16 widened to float32), or a dict of them of a dict of Tensors."""
    import numpy as np

    if isinstance(value, dict):
        return {k: to_numpy(v) for k, v in value.items()}
    if value.dtype == "BF16":
        wide = np.frombuffer(value.data, dtype="<u2").astype("<u4") << 16
        return wide.view("<f4").reshape(value.shape).copy()
    if value.dtype not in _NUMPY_DTYPES:
        raise SafetensorsError(f"numpy has no dtype for {value.dtype}")
    return np.frombuffer(value.data, dtype=_NUMPY_DTYPES[value.dtype]).reshape(value.shape).copy()


def from_numpy(value):
    """A Tensor of a numpy array (or anything np.asarray takes), or a dict of Tensors of a dict of arrays."""
    import numpy as np

    if isinstance(value, dict):
        return {k: from_numpy(v) for k, v in value.items()}
    arr = np.asarray(value)
    little = arr.dtype.newbyteorder("<")
    for dtype, np_dtype in _NUMPY_DTYPES.items():
        if little == np.dtype(np_dtype):
            return Tensor(dtype, tuple(arr.shape), np.ascontiguousarray(arr, dtype=np_dtype).tobytes())
    raise SafetensorsError(f"numpy dtype {arr.dtype} has no safetensors dtype")


# torch -----------------------------------------------------------------------------------------------


def _torch_dtypes(torch):
    return {
        "F64": torch.float64,
        "F32": torch.float32,
        "F16": torch.float16,
        "BF16": torch.bfloat16,
        "I64": torch.int64,
        "I32": torch.int32,
        "I16": torch.int16,
        "I8": torch.int8,
        "U8": torch.uint8,
        "BOOL": torch.bool,
    }


def to_torch(value, device=None):
    """A torch tensor of a Tensor (on `device`), or a state_dict of a dict of Tensors."""
    import torch

    if isinstance(value, dict):
        return {k: to_torch(v, device) for k, v in value.items()}
    dtypes = _torch_dtypes(torch)
    if value.dtype not in dtypes:
        raise SafetensorsError(f"torch has no dtype for {value.dtype}")
    if value.numel == 0:
        out = torch.empty(value.shape, dtype=dtypes[value.dtype])
    else:
        out = torch.frombuffer(bytearray(value.data), dtype=dtypes[value.dtype]).reshape(value.shape)
    return out.to(device) if device is not None else out


def from_torch(value):
    """A Tensor of a torch tensor (any device), or a dict of Tensors of a state_dict."""
    import torch

    if isinstance(value, dict):
        return {k: from_torch(v) for k, v in value.items()}
    for dtype, torch_dtype in _torch_dtypes(torch).items():
        if value.dtype == torch_dtype:
            break
    else:
        raise SafetensorsError(f"torch dtype {value.dtype} has no safetensors dtype")
    t = value.detach().to("cpu").contiguous()
    shape = tuple(t.shape)
    flat = t.reshape(-1)
    if dtype == "BF16":
        flat = flat.view(torch.int16)
    # Torch keeps tensors in the host's byte order, little-endian on every platform it ships for.
    return Tensor(dtype, shape, flat.numpy().tobytes())
