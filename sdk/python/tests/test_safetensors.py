import json
import os
import struct
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from flip_runtime import safetensors as st  # noqa: E402
from flip_runtime.safetensors import SafetensorsError, Tensor  # noqa: E402


def f32(*values):
    return struct.pack(f"<{len(values)}f", *values)


def header_of(data):
    (n,) = struct.unpack_from("<Q", data, 0)
    return n, data[8 : 8 + n]


def file_of(header, body=b"", pad=True):
    text = json.dumps(header).encode()
    if pad:
        text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + body


class RoundTrip(unittest.TestCase):
    def test_tensors_and_metadata_come_back_exactly_including_an_i64_scalar(self):
        tensors = {
            "weight": Tensor("F32", (2, 3), f32(1, 2, 3, 4, 5, 6)),
            "bias": Tensor("F32", (3,), f32(-1, 0, 1)),
            "steps": Tensor("I64", (), struct.pack("<q", 12345678901)),
            "mask": Tensor("U8", (4,), bytes([0, 1, 1, 0])),
            "half": Tensor("F16", (2,), struct.pack("<2e", 1.5, -2.0)),
            "brain": Tensor("BF16", (1,), bytes([0x80, 0x3F])),
            "empty": Tensor("F64", (0, 5), b""),
        }
        data = st.dumps(tensors, {"format": "pt", "round": "3"})
        back = st.loads(data)
        self.assertEqual(back, tensors)
        self.assertEqual(back["steps"].shape, ())
        self.assertEqual(struct.unpack("<q", back["steps"].data)[0], 12345678901)
        self.assertEqual(st.read_metadata(data), {"format": "pt", "round": "3"})

    def test_the_header_is_padded_with_spaces_to_a_multiple_of_8_and_tensors_are_aligned(self):
        data = st.dumps({"a": Tensor("U8", (3,), b"xyz"), "b": Tensor("F64", (1,), struct.pack("<d", 2.5))})
        n, header = header_of(data)
        self.assertEqual(n % 8, 0)
        self.assertEqual(len(header), n)
        parsed = json.loads(header)
        self.assertEqual(header.rstrip(b" "), json.dumps(parsed, separators=(",", ":")).encode())
        self.assertEqual(parsed["b"]["data_offsets"], [0, 8], "the 8-byte tensor comes first, aligned")
        self.assertEqual(parsed["a"]["data_offsets"], [8, 11])
        self.assertEqual(len(data), 8 + n + 11)

    def test_an_unpadded_header_from_another_writer_is_read(self):
        data = file_of({"x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, f32(7), pad=False)
        self.assertEqual(st.loads(data)["x"].data, f32(7))

    def test_files_round_trip_through_disk(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "w.safetensors")
            st.save_file({"w": Tensor("I32", (2,), struct.pack("<2i", -3, 4))}, path)
            self.assertEqual(struct.unpack("<2i", st.load_file(path)["w"].data), (-3, 4))


class Malformed(unittest.TestCase):
    def assertRejected(self, data, message):
        with self.assertRaises(SafetensorsError) as ctx:
            st.loads(data)
        self.assertRegex(str(ctx.exception), message)

    def test_too_short_files_are_rejected(self):
        self.assertRejected(b"\x01\x00", "too short")

    def test_a_header_length_past_the_end_is_rejected(self):
        self.assertRejected(struct.pack("<Q", 1000) + b"{}", "does not fit")

    def test_a_header_that_is_not_json_is_rejected(self):
        self.assertRejected(struct.pack("<Q", 8) + b"{not jso", "not JSON")

    def test_an_unknown_dtype_is_rejected(self):
        self.assertRejected(file_of({"x": {"dtype": "F128", "shape": [1], "data_offsets": [0, 16]}}, b"\0" * 16), "unknown dtype")

    def test_offsets_that_do_not_match_the_shape_are_rejected(self):
        self.assertRejected(file_of({"x": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}}, f32(1)), "do not hold")

    def test_offsets_past_the_data_are_rejected(self):
        self.assertRejected(file_of({"x": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, f32(1)), "do not hold")

    def test_overlapping_tensors_are_rejected(self):
        header = {"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "b": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}
        self.assertRejected(file_of(header, f32(1)), "without gaps or overlaps")

    def test_trailing_bytes_are_rejected(self):
        self.assertRejected(file_of({"x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, f32(1, 2)), "tensors use 4")

    def test_a_negative_dimension_is_rejected(self):
        self.assertRejected(file_of({"x": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 0]}}), "non-negative")

    def test_metadata_that_is_not_strings_is_rejected(self):
        self.assertRejected(file_of({"__metadata__": {"n": 1}}), "__metadata__")

    def test_a_tensor_whose_bytes_do_not_match_its_shape_cannot_be_made(self):
        with self.assertRaisesRegex(SafetensorsError, "needs 8 bytes"):
            Tensor("F32", (2,), b"1234")


try:
    import numpy as np
except ImportError:
    np = None


@unittest.skipIf(np is None, "numpy is not installed")
class Numpy(unittest.TestCase):
    def test_arrays_convert_both_ways_keeping_dtype_and_shape(self):
        arrays = {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "n": np.array(7, dtype=np.int64), "big": np.array([1.5], dtype=">f8")}
        back = st.to_numpy(st.loads(st.dumps(st.from_numpy(arrays))))
        np.testing.assert_array_equal(back["w"], arrays["w"])
        self.assertEqual(back["w"].dtype, np.float32)
        self.assertEqual(back["n"].shape, ())
        self.assertEqual(back["big"].tolist(), [1.5])

    def test_bf16_widens_to_float32(self):
        self.assertEqual(st.to_numpy(Tensor("BF16", (2,), bytes([0x80, 0x3F, 0x00, 0xC0]))).tolist(), [1.0, -2.0])


try:
    import torch
except ImportError:
    torch = None


@unittest.skipIf(torch is None, "torch is not installed")
class Torch(unittest.TestCase):
    def test_a_state_dict_round_trips_with_dtypes_shapes_and_scalars(self):
        state = {
            "conv.weight": torch.randn(4, 1, 3, 3),
            "bn.num_batches_tracked": torch.tensor(17),
            "half": torch.tensor([1.5, -2.0], dtype=torch.bfloat16),
            "mask": torch.tensor([True, False]),
            "empty": torch.zeros(0, 3, dtype=torch.float64),
            "strided": torch.arange(6, dtype=torch.int32).reshape(2, 3).t(),
        }
        back = st.to_torch(st.loads(st.dumps(st.from_torch(state))))
        self.assertEqual(st.from_torch(state)["bn.num_batches_tracked"].dtype, "I64")
        self.assertEqual(st.from_torch(state)["bn.num_batches_tracked"].shape, ())
        for name, t in state.items():
            self.assertEqual(back[name].dtype, t.dtype, name)
            self.assertEqual(back[name].shape, t.shape, name)
            self.assertTrue(torch.equal(back[name], t), name)


if __name__ == "__main__":
    unittest.main()
