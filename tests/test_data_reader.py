"""DataReader: every format read as rows, errors that name the file, and stored trees that
read their files again — or refuse a file that changed."""

from __future__ import annotations

import io
import json
import os

import numpy as np
import pytest

from ptdry import DataError, DataLoader, DataProvider, DataReader, NotReadyError
from ptdry.data.fingerprint import fingerprint


def _write_formats(tmp_path):
    x, y = np.arange(20.0).reshape(10, 2), np.arange(10)
    np.save(tmp_path / "x.npy", x)
    np.savez(tmp_path / "xy.npz", x=x, y=y)
    (tmp_path / "xy.csv").write_text("a,b,label\n" + "".join(f"{r[0]},{r[1]},{t}\n" for r, t in zip(x, y)))
    (tmp_path / "xy.json").write_text(json.dumps([{"x": r.tolist(), "y": int(t)} for r, t in zip(x, y)]))
    (tmp_path / "xy.jsonl").write_text("".join(json.dumps({"x": r.tolist(), "y": int(t)}) + "\n" for r, t in zip(x, y)))
    import h5py

    with h5py.File(tmp_path / "xy.h5", "w") as f:
        f["x"], f["y"] = x, y
    import lmdb

    env = lmdb.open(str(tmp_path / "xy.lmdb"), map_size=1 << 24)
    with env.begin(write=True) as txn:
        for i in range(10):
            buf = io.BytesIO()
            np.savez(buf, x=x[i], y=y[i])
            txn.put(f"{i:04d}".encode(), buf.getvalue())
    env.close()
    return x, y


READS = {  # file, reader options -> elements are (x_row, y)
    "npz": ("xy.npz", {}),
    "csv": ("xy.csv", {"target": "label", "dtype": "float64"}),
    "json": ("xy.json", {"keys": ["x", "y"]}),
    "jsonl": ("xy.jsonl", {}),
    "hdf5": ("xy.h5", {}),
    "lmdb": ("xy.lmdb", {}),
}


@pytest.mark.parametrize("fmt", READS)
def test_each_format_reads_as_supervised_rows(tmp_path, fmt):
    x, y = _write_formats(tmp_path)
    name, options = READS[fmt]
    ds = DataReader(**options).read(tmp_path / name)
    assert len(ds) == 10 and ds.supervised
    xs, ys = zip(*[(np.asarray(a), int(b)) for a, b in ds])
    assert np.allclose(np.stack(xs), x) and list(ys) == y.tolist()
    xb, yb = next(iter(DataLoader(ds, batch_size=4, shuffle=True, seed=0)))
    assert np.allclose(xb, x[yb])


def test_a_npy_file_is_memory_mapped_rows(tmp_path):
    x, _ = _write_formats(tmp_path)
    ds = DataReader().read(tmp_path / "x.npy")
    assert isinstance(ds._source().arrays[0], np.memmap) and ds[3].tolist() == x[3].tolist()


def test_hdf5_rows_are_read_from_the_file_in_any_order(tmp_path):
    import h5py

    x, y = _write_formats(tmp_path)
    ds = DataReader(keys=["y", "x"]).read(tmp_path / "xy.h5")
    assert all(isinstance(a, h5py.Dataset) for a in ds._source().arrays)  # not loaded into memory
    ys, xs = ds._rows(np.array([7, 2, 7, 0]))
    assert ys.tolist() == [7, 2, 7, 0] and np.array_equal(xs, x[[7, 2, 7, 0]])


def test_a_tfrecord_file_is_a_stream_of_feature_dicts(tmp_path):
    import tensorflow as tf

    path = str(tmp_path / "data.tfrecord")
    with tf.io.TFRecordWriter(path) as writer:
        for i in range(5):
            features = {
                "x": tf.train.Feature(float_list=tf.train.FloatList(value=[i, i + 0.5])),
                "y": tf.train.Feature(int64_list=tf.train.Int64List(value=[i])),
            }
            writer.write(tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString())
    ds = DataReader().read(path)
    assert not ds.random_access and ds.count() == 5
    assert ds.peek()["x"].tolist() == [0.0, 0.5]
    pairs = DataReader(keys=["x", "y"]).read(path)
    assert pairs.supervised and [y.tolist() for _, y in DataLoader(pairs, batch_size=2)] == [
        [[0], [1]],
        [[2], [3]],
        [[4]],
    ]


def test_a_folder_of_images_gives_images_and_class_labels(tmp_path):
    from PIL import Image

    for label, value in (("cat", 10), ("dog", 200)):
        (tmp_path / "imgs" / label).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((4, 5, 3), value + i, np.uint8)).save(tmp_path / "imgs" / label / f"{i}.png")
    ds = DataReader().read(tmp_path / "imgs")
    assert ds.classes == ["cat", "dog"] and len(ds) == 6 and ds.supervised
    image, label = ds[4]
    assert image.shape == (4, 5, 3) and image.dtype == np.uint8 and int(image[0, 0, 0]) == 201 and label == 1
    grey = DataReader(mode="L", size=(2, 2)).read(tmp_path / "imgs")
    assert grey[0][0].shape == (2, 2)


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("data.txt", "1,2", r"data.txt: unsupported format '.txt'; DataReader reads .csv, .h5"),
        ("broken.npy", "not numpy", r"broken.npy: cannot be read as a .npy array"),
        ("broken.h5", "not hdf5", r"broken.h5: cannot be read as HDF5"),
        ("words.csv", "a,b\n1,x\n", r"words.csv, line 2: 'x' is not a number"),
        ("ragged.csv", "a,b\n1,2\n3\n", r"ragged.csv, line 3: 1 columns, expected 2"),
        ("bad.json", "{", r"bad.json: cannot be read as JSON"),
        ("missing.npz", None, r"missing.npz: no such file or folder"),
    ],
)
def test_unreadable_or_unsupported_input_is_a_data_error_naming_the_file(tmp_path, name, content, message):
    if content is not None:
        (tmp_path / name).write_text(content)
    with pytest.raises(DataError, match=message):
        DataReader().read(tmp_path / name)


def test_asking_for_keys_a_file_lacks_names_them(tmp_path):
    _write_formats(tmp_path)
    with pytest.raises(DataError, match=r"xy.npz has no arrays \['z'\]; it has \['x', 'y'\]"):
        DataReader(keys=["x", "z"]).read(tmp_path / "xy.npz")


def test_a_stored_reader_dataset_reads_its_file_again(tmp_path):
    _write_formats(tmp_path)
    ds = DataReader(keys="x").read(tmp_path / "xy.npz").unbatch().batch(4)
    definition = ds.definition()
    node = definition.kwargs["source"] if "source" in definition.kwargs else definition.args[0]
    assert node.kwargs["path"] == str(tmp_path / "xy.npz") and node.kwargs["fingerprint"] == fingerprint(
        tmp_path / "xy.npz"
    )
    rebuilt = definition.build()  # nothing passed again, no state loaded
    assert rebuilt.problems() == []
    assert [b.tolist() for b in rebuilt] == [b.tolist() for b in ds]


def test_a_changed_file_is_refused_by_name_when_the_rebuilt_tree_reads_it(tmp_path):
    x, y = _write_formats(tmp_path)
    definition = DataReader().read(tmp_path / "xy.npz").definition()
    np.savez(tmp_path / "xy.npz", x=x + 1, y=y)
    rebuilt = definition.build()  # building works: the run can still be looked at
    with pytest.raises(DataError, match=r"xy.npz changed since this dataset was defined: its fingerprint was sha256:"):
        rebuilt[0]
    with pytest.raises(DataError, match=r"xy.npz changed since this dataset was defined"):
        rebuilt.problems()
    trainer = _tiny_trainer()
    with pytest.raises(DataError, match=r"xy.npz changed since this dataset was defined"):
        trainer.fit(DataProvider(rebuilt.definition().build(), partition=(50, 50, 0)))
    assert trainer.looper.steps_done == 0
    os.remove(tmp_path / "xy.npz")
    assert rebuilt.problems() == [
        f"{tmp_path / 'xy.npz'}: no such file or folder (this dataset read it when it was defined)"
    ]


def _tiny_trainer():
    import torch

    from ptdry import Criterion, Looper, Model, ObjectDef, Optimizer, Trainer

    model = Model(ObjectDef(torch.nn.Linear, 2, 3), Optimizer(torch.optim.SGD, lr=0.1), Criterion(torch.nn.CrossEntropyLoss))
    return Trainer(model, Looper(epochs=1, batch_size=4), progress_bar=False)


def test_a_large_file_is_fingerprinted_by_sampled_blocks(tmp_path, monkeypatch):
    import ptdry.data.fingerprint as fp

    monkeypatch.setattr(fp, "FULL_HASH_BYTES", 1000)
    monkeypatch.setattr(fp, "BLOCK_BYTES", 100)
    path = tmp_path / "big.bin"
    data = bytearray(os.urandom(10_000))
    path.write_bytes(bytes(data))
    before = fp.fingerprint(path)
    data[0] ^= 1  # inside the first block
    path.write_bytes(bytes(data))
    assert fp.fingerprint(path) != before
    path.write_bytes(bytes(data) + b"x")  # appended: the size changed
    assert fp.fingerprint(path) != fp.fingerprint(tmp_path) != before


def test_a_reader_dataset_of_a_rebuilt_tree_is_not_ready_without_its_file(tmp_path):
    _write_formats(tmp_path)
    definition = DataReader().read(tmp_path / "x.npy").definition()
    os.rename(tmp_path / "x.npy", tmp_path / "moved.npy")
    with pytest.raises(DataError, match=r"x.npy: no such file or folder"):
        definition.build()[0]
    with pytest.raises(NotReadyError, match=r"x.npy: no such file or folder"):
        DataProvider(definition.build()).provide("train")
