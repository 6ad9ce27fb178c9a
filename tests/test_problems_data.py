"""The CIFAR-10 loader on tiny archives built here; unsafe and corrupt inputs; fallback."""

import io
import os
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest

from refopt.problems import DataError, load_cifar10, load_dataset
from refopt.problems.data import (
    download_cifar10,
    extract_cifar10,
    safe_unpickle,
    sha256_file,
)

N = 4  # images per batch
FILES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


def batch(seed: int, n: int = N) -> dict:
    rng = np.random.default_rng(seed)
    return {
        b"batch_label": b"batch %d" % seed,
        b"labels": [int(v) for v in rng.integers(0, 10, n)],
        b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
        b"filenames": [b"img%d.png" % i for i in range(n)],
    }


def write_dir(d: Path, protocol: int = 2) -> dict:
    d.mkdir(parents=True, exist_ok=True)
    content = {}
    for i, name in enumerate(FILES):
        content[name] = batch(i)
        (d / name).write_bytes(pickle.dumps(content[name], protocol=protocol))
    (d / "batches.meta").write_bytes(pickle.dumps({b"label_names": [b"a"] * 10}, protocol=2))
    return content


def write_tar(path: Path, src: Path, arcdir: str = "cifar-10-batches-py") -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for f in sorted(src.iterdir()):
            tar.add(f, arcname=f"{arcdir}/{f.name}")
    return path


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_directory_shapes_labels_and_values(tmp_path, protocol):
    content = write_dir(tmp_path / "cifar-10-batches-py", protocol)
    for where in (tmp_path, tmp_path / "cifar-10-batches-py"):
        ds = load_cifar10(where)
        assert ds.name == "cifar10" and ds.n_classes == 10
        assert ds.x_train.shape == (5 * N, 3072) and ds.x_test.shape == (N, 3072)
        assert ds.x_train.dtype == np.float32
        want_y = np.concatenate([content[f][b"labels"] for f in FILES[:5]])
        np.testing.assert_array_equal(ds.y_train, want_y)
        np.testing.assert_array_equal(ds.y_test, content["test_batch"][b"labels"])
        # standardisation is per channel with training statistics, order preserved
        raw = np.concatenate([content[f][b"data"] for f in FILES[:5]]).astype(np.float64) / 255
        ch = raw.reshape(-1, 3, 1024)
        want = (ch - ch.mean(axis=(0, 2), keepdims=True)) / ch.std(axis=(0, 2), keepdims=True)
        np.testing.assert_allclose(ds.x_train, want.reshape(-1, 3072), rtol=1e-4, atol=1e-5)


def test_tarball(tmp_path):
    content = write_dir(tmp_path / "src")
    tar = write_tar(tmp_path / "cifar-10-python.tar.gz", tmp_path / "src")
    ds = load_cifar10(tar)
    assert ds.source == str(tar)
    np.testing.assert_array_equal(ds.y_test, content["test_batch"][b"labels"])
    assert ds.x_train.shape == (5 * N, 3072)


class Evil:
    def __reduce__(self):
        return (os.system, (f"touch {Evil.marker}",))


def test_malicious_pickle_is_refused_without_running(tmp_path):
    Evil.marker = tmp_path / "pwned"
    d = tmp_path / "cifar-10-batches-py"
    write_dir(d)
    payload = {b"data": Evil(), b"labels": [0]}
    (d / "data_batch_3").write_bytes(pickle.dumps(payload, protocol=2))
    # sanity: the payload really runs code under the standard unpickler
    pickle.loads((d / "data_batch_3").read_bytes())
    assert Evil.marker.exists()
    Evil.marker.unlink()
    with pytest.raises(DataError, match="not allowed"):
        load_cifar10(d)
    assert not Evil.marker.exists()
    # other dangerous globals are refused too
    for mod, name in [("builtins", "eval"), ("subprocess", "Popen"), ("numpy", "load")]:
        bad = f"c{mod}\n{name}\n(S'1'\ntR.".encode()
        (d / "test_batch").write_bytes(bad)
        with pytest.raises(DataError, match="not allowed"):
            safe_unpickle(d / "test_batch")


@pytest.mark.parametrize("cut", [10, 500, 3000])
def test_truncated_pickle(tmp_path, cut):
    d = tmp_path / "c"
    write_dir(d)
    p = d / "data_batch_2"
    p.write_bytes(p.read_bytes()[:cut])
    with pytest.raises(DataError, match="data_batch_2"):
        load_cifar10(d)


def test_wrong_content(tmp_path):
    d = tmp_path / "c"
    write_dir(d)
    bad = batch(0)
    bad[b"labels"] = bad[b"labels"][:-1]
    (d / "data_batch_1").write_bytes(pickle.dumps(bad, protocol=2))
    with pytest.raises(DataError, match="labels"):
        load_cifar10(d)
    bad = batch(0)
    bad[b"data"] = bad[b"data"].astype(np.float64)
    (d / "data_batch_1").write_bytes(pickle.dumps(bad, protocol=2))
    with pytest.raises(DataError, match="uint8"):
        load_cifar10(d)
    (d / "data_batch_1").write_bytes(pickle.dumps([1, 2, 3], protocol=2))
    with pytest.raises(DataError, match="dict"):
        load_cifar10(d)


def test_truncated_and_corrupt_archives(tmp_path):
    write_dir(tmp_path / "src")
    tar = write_tar(tmp_path / "a.tar.gz", tmp_path / "src")
    data = tar.read_bytes()
    (tmp_path / "cut.tar.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="truncated or corrupt"):
        load_cifar10(tmp_path / "cut.tar.gz")
    (tmp_path / "junk.tar.gz").write_bytes(b"not an archive at all" * 10)
    with pytest.raises(DataError, match="corrupt"):
        load_cifar10(tmp_path / "junk.tar.gz")
    # a valid tar without CIFAR members
    (tmp_path / "other.txt").write_text("hello")
    with tarfile.open(tmp_path / "other.tar", "w") as t:
        t.add(tmp_path / "other.txt", arcname="other.txt")
    with pytest.raises(DataError, match="no CIFAR-10"):
        load_cifar10(tmp_path / "other.tar")


def test_tar_extraction_ignores_traversal_members(tmp_path):
    src = tmp_path / "src"
    write_dir(src)
    tar = tmp_path / "t.tar"
    with tarfile.open(tar, "w") as t:
        for f in sorted(src.iterdir()):
            t.add(f, arcname=f"cifar-10-batches-py/{f.name}")
        info = tarfile.TarInfo("../escaped")
        info.size = 3
        t.addfile(info, io.BytesIO(b"bad"))
        info = tarfile.TarInfo("cifar-10-batches-py/../../test_batch")
        info.size = 3
        t.addfile(info, io.BytesIO(b"bad"))
    out = tmp_path / "out" / "inner"
    d = extract_cifar10(tar, out)
    assert not (tmp_path / "out" / "escaped").exists() and not (tmp_path / "escaped").exists()
    assert not (tmp_path / "test_batch").exists()
    assert sorted(p.name for p in d.iterdir()) == sorted(FILES + ["batches.meta"])


def test_not_a_cifar_dir_and_missing_paths(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="not a CIFAR-10"):
        load_cifar10(tmp_path / "empty")
    with pytest.raises(FileNotFoundError):
        load_cifar10(tmp_path / "nope")
    with pytest.raises(FileNotFoundError):
        load_dataset(data=tmp_path / "nope")


def test_download_checksum_on_local_files(tmp_path):
    src = tmp_path / "remote.tar.gz"
    src.write_bytes(b"pretend archive bytes")
    import hashlib

    digest = hashlib.sha256(b"pretend archive bytes").hexdigest()
    assert sha256_file(src) == digest
    dest = tmp_path / "cache"
    got = download_cifar10(dest, url=src.as_uri(), sha256=digest)
    assert got.read_bytes() == src.read_bytes()
    with pytest.raises(DataError, match="checksum mismatch"):
        download_cifar10(tmp_path / "cache2", url=src.as_uri(), sha256="0" * 64)
    assert list((tmp_path / "cache2").iterdir()) == []  # no partial file left behind


def test_fallback_and_env(tmp_path, monkeypatch):
    pytest.importorskip("sklearn")
    monkeypatch.delenv("REFOPT_DATA", raising=False)
    ds = load_dataset()
    assert ds.name == "digits" and ds.x_train.shape[1] == 64
    assert len(ds.y_train) + len(ds.y_test) == 1797
    assert set(np.unique(ds.y_train)) == set(range(10))
    write_dir(tmp_path / "cifar-10-batches-py")
    monkeypatch.setenv("REFOPT_DATA", str(tmp_path))
    assert load_dataset().name == "cifar10"
    assert load_dataset("digits").name == "digits"
    monkeypatch.delenv("REFOPT_DATA")
    with pytest.raises(ValueError, match="needs --data"):
        load_dataset("cifar10")
    with pytest.raises(ValueError, match="dataset must be"):
        load_dataset("mnist")
