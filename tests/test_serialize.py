"""serialize: exact, JSON/BSON-safe encoding of argument values; readable and canonical views."""

from __future__ import annotations

import datetime as dt
import enum
import json
import math
import pathlib

import bson
import numpy as np
import pytest
import torch

from ptdry.core import serialize
from ptdry.core.allowed import TRUSTED
from ptdry.core.serialize import canonical_json, decode, encode, readable, safe_key
from ptdry.errors import ConfigError, SerializationError


class Color(enum.Enum):
    RED = 1


def roundtrip(value, policy=None):
    data = encode(value)
    bson.encode({"v": data})
    return decode(json.loads(json.dumps(data, allow_nan=False)), policy=policy)


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        0,
        -(2**63),
        2**63 - 1,
        1.5,
        "text",
        [1, "a", None],
        {"a": {"b": [1, 2]}},
    ],
)
def test_json_values_encode_as_themselves(value):
    assert encode(value) == value
    assert roundtrip(value) == value


def test_tuples_are_preserved_at_any_depth():
    value = (1, (2, (3,)), [4, (5,)], {"k": (6,)})
    back = roundtrip(value)
    assert back == value
    assert type(back) is tuple and type(back[1][1]) is tuple and type(back[2][1]) is tuple
    assert type(back[3]["k"]) is tuple


def test_dict_keys_with_dots_dollars_non_strings_and_marker_names_round_trip():
    value = {"a.b": 1, "$set": 2, 3: "three", (1, 2): "pair", "__tuple__": 4, "plain": 5}
    data = encode(value)
    assert list(data) == ["__dict__"]
    assert roundtrip(value) == value


def test_safe_keys_are_strings_without_dots_dollars_or_marker_shape():
    assert safe_key("lr") and safe_key("a$b")
    assert not any(safe_key(k) for k in ("a.b", "$x", "__x", 1, "a\x00"))


def test_big_integers_and_non_finite_floats_round_trip():
    back = roundtrip([2**64, -(2**70), float("inf"), float("-inf"), float("nan")])
    assert back[:4] == [2**64, -(2**70), float("inf"), float("-inf")]
    assert math.isnan(back[4])


def test_numpy_scalars_keep_their_dtype():
    for value in (np.float64(0.1), np.float32(1.5), np.int64(3), np.int8(-2), np.bool_(True), np.uint16(9)):
        back = roundtrip(value)
        assert type(back) is type(value) and back == value


def test_numpy_arrays_round_trip_bitwise():
    arr = np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32)
    back = roundtrip(arr)
    assert back.dtype == arr.dtype and back.shape == arr.shape and back.tobytes() == arr.tobytes()
    assert back.flags.writeable
    strings = np.array(["a", "bc"])
    assert roundtrip(strings).tolist() == ["a", "bc"]


def test_torch_tensors_dtypes_and_devices_round_trip():
    t = torch.randn(2, 3).to(torch.bfloat16)
    back = roundtrip(t)
    assert back.dtype == torch.bfloat16 and torch.equal(back, t)
    assert roundtrip(torch.empty(0, 3)).shape == (0, 3)
    assert roundtrip(torch.float16) is torch.float16
    assert roundtrip(torch.device("cpu")) == torch.device("cpu")


def test_bytes_enums_paths_datetimes_and_callables_round_trip():
    value = [b"\x00\xff", Color.RED, pathlib.Path("/tmp/a"), dt.datetime(2024, 5, 6, 7, 8, 9), np.mean, torch.nn.ReLU]
    assert roundtrip(value, TRUSTED) == value  # np.mean is no class: decoding it needs trust


def test_built_in_functions_and_methods_are_stored_by_their_public_name():
    assert encode(str.lower) == {"__callable__": "builtins:str.lower"}
    assert encode(torch.relu) == {"__callable__": "torch:relu"}
    assert roundtrip([str.lower, torch.relu, len, np.add, torch.Tensor.add], TRUSTED) == [str.lower, torch.relu, len, np.add, torch.Tensor.add]


def test_values_over_the_size_limit_are_refused_naming_the_path():
    with pytest.raises(SerializationError, match=r"argument x is a tensor of 400000 bytes, over the 65536-byte limit"):
        encode(torch.zeros(100_000), "x")
    with pytest.raises(SerializationError, match=r"argument x\[1\] is a bytes value of 70000 bytes"):
        encode([b"", b"0" * 70_000], "x")
    assert decode(encode(np.zeros(100_000), limit=None)).shape == (100_000,)


def test_object_arrays_are_refused():
    with pytest.raises(SerializationError, match=r"argument a is a NumPy array of dtype object; only plain numeric"):
        encode(np.array([object()]), "a")


def test_non_importable_callables_are_refused_naming_them():
    def local():
        pass

    with pytest.raises(SerializationError, match=r"argument f = <function .*<locals>\.local> cannot be imported by name"):
        encode(local, "f")


def test_unknown_and_malformed_markers_are_config_errors():
    with pytest.raises(ConfigError, match=r"unknown marker '__nope__' in stored data; written by a newer ptdry\?"):
        decode({"__nope__": 1})
    with pytest.raises(ConfigError, match=r"malformed __tuple__ value 5"):
        decode({"__tuple__": 5})


def test_encode_hook_handles_values_first():
    def hook(value, path):
        return {"seen": path} if value == "x" else serialize.NOT_HANDLED

    assert encode({"a": ["x", "y"]}, "root", hook) == {"a": [{"seen": "root.a[0]"}, "y"]}


def test_readable_gives_plain_queryable_data():
    value = {"t": (1, 2), "n": np.float32(0.5), "k.v": 1, "cls": torch.nn.ReLU, "big": np.zeros(100), "c": Color.RED}
    out = readable(value)
    assert out == {
        "t": [1, 2],
        "n": 0.5,
        "k\uff0ev": 1,
        "cls": "torch.nn.modules.activation:ReLU",
        "big": {"dtype": "float64", "shape": [100]},
        "c": "RED",
    }
    bson.encode(out)


def test_canonical_json_sorts_keys_and_neutralizes_numpy_scalars():
    a = canonical_json(encode({"b": np.int64(1), "a": np.float64(0.1)}))
    b = canonical_json(encode({"a": 0.1, "b": 1}))
    assert a == b == '{"a":0.1,"b":1}'
