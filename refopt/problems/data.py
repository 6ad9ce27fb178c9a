"""Image classification data: CIFAR-10 (safe loader) with an offline digits fallback.

CIFAR-10
--------
The standard "CIFAR-10 python version" (Krizhevsky 2009): the official tarball
``cifar-10-python.tar.gz`` or its extracted ``cifar-10-batches-py`` directory holding
``data_batch_1`` .. ``data_batch_5`` and ``test_batch``. Each batch is a pickled dict
with ``b"data"`` (``N x 3072`` uint8, channel-major 32 x 32 images) and ``b"labels"``
(``N`` integers in 0..9). It is located through an explicit path (``--data PATH``) or
the ``REFOPT_DATA`` environment variable.

Safety with untrusted files
~~~~~~~~~~~~~~~~~~~~~~~~~~~
* Pickles are read by :class:`refopt.problems.data.SafeUnpickler`, which resolves only
  the handful of globals a CIFAR batch needs (NumPy's array reconstructor, ``ndarray``,
  ``dtype``, ``scalar``, ``_frombuffer`` and ``_codecs.encode``) and refuses every other
  global, so a pickle that would call ``os.system`` (or anything else) is rejected
  before any of its code runs.
* Tarballs are extracted with ``tarfile``'s ``"data"`` filter (no absolute paths, no
  ``..``, no links out of the destination, no device files), and only the expected
  member names are extracted.
* Every decoded batch is validated (keys, dtype, shape, label range); missing,
  truncated or corrupt files raise :class:`refopt.problems.data.DataError` (a
  ``ValueError``) or ``FileNotFoundError`` naming the file.

Fallback
--------
When CIFAR-10 is not available, :func:`refopt.problems.load_dataset` returns
scikit-learn's 8 x 8 handwritten digits (1,797 real images shipped with
scikit-learn, no network needed). Every dataset carries its ``name`` so outputs can say
which one was used.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import tarfile
import tempfile
import urllib.request
import zlib
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

__all__ = [
    "CIFAR10_SHA256",
    "CIFAR10_SIZE",
    "CIFAR10_URL",
    "DataError",
    "Dataset",
    "SafeUnpickler",
    "check_cifar10",
    "download_cifar10",
    "extract_cifar10",
    "find_cifar10",
    "load_cifar10",
    "load_dataset",
    "load_digits",
    "safe_unpickle",
    "sha256_file",
]

#: Official location of the CIFAR-10 python archive.
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
#: SHA-256 of the official archive.
CIFAR10_SHA256 = "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"
#: Size in bytes of the official archive.
CIFAR10_SIZE = 170_498_071

_DIRNAME = "cifar-10-batches-py"
_TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
_TEST_FILE = "test_batch"
_MEMBERS = (*_TRAIN_FILES, _TEST_FILE, "batches.meta", "readme.html")
_PIXELS = 3 * 32 * 32


class DataError(ValueError):
    """A data file is corrupt, truncated, unsafe or not what was expected."""


class Dataset(NamedTuple):
    """A train/test split of flattened images.

    Attributes
    ----------
    x_train, x_test : numpy.ndarray
        float32 features, one row per image, standardised with training statistics.
    y_train, y_test : numpy.ndarray
        int64 labels in ``[0, n_classes)``.
    name : str
        ``"cifar10"`` or ``"digits"``.
    source : str
        Where the data came from (a path, or ``"scikit-learn load_digits"``).
    n_classes : int
        Number of classes (10 for both datasets).
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    name: str
    source: str
    n_classes: int


def _numpy_globals() -> dict[tuple[str, str], Any]:
    try:  # NumPy >= 2
        from numpy._core import multiarray, numeric
    except ImportError:  # pragma: no cover - NumPy 1.x
        from numpy.core import multiarray, numeric  # type: ignore[no-redef]
    import _codecs

    allowed: dict[tuple[str, str], Any] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): _codecs.encode,
    }
    for mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(mod, "_reconstruct")] = multiarray._reconstruct
        allowed[(mod, "scalar")] = multiarray.scalar
    for mod in ("numpy.core.numeric", "numpy._core.numeric"):
        allowed[(mod, "_frombuffer")] = numeric._frombuffer
    return allowed


class SafeUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the globals a CIFAR-10 batch needs.

    Parameters
    ----------
    file : binary file object
        The pickle stream.

    Notes
    -----
    Allowed globals: ``numpy.ndarray``, ``numpy.dtype``, the array reconstructors
    ``numpy.core.multiarray._reconstruct`` / ``scalar`` and
    ``numpy.core.numeric._frombuffer`` (both the ``numpy.core`` and ``numpy._core``
    spellings) and ``_codecs.encode`` (used by protocol-2 pickles of ``bytes``). Plain
    containers, numbers and strings need no global. Anything else raises
    :class:`pickle.UnpicklingError` from :meth:`find_class`, before it could be called.
    Strings are decoded with ``encoding="bytes"`` (the batches were written by
    Python 2).
    """

    _allowed = _numpy_globals()

    def __init__(self, file: io.BufferedIOBase) -> None:
        super().__init__(file, encoding="bytes")

    def find_class(self, module: str, name: str) -> Any:
        """Return an allowed global or refuse.

        Parameters
        ----------
        module, name : str
            The global requested by the pickle.

        Returns
        -------
        object
            The allowed object.

        Raises
        ------
        pickle.UnpicklingError
            For any global outside the allow-list.
        """
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"global '{module}.{name}' is not allowed in a CIFAR-10 batch"
            ) from None


def safe_unpickle(path: str | os.PathLike[str]) -> Any:
    """Load a pickle file with :class:`refopt.problems.data.SafeUnpickler`.

    Parameters
    ----------
    path : str or path-like
        The file.

    Returns
    -------
    object
        The unpickled object.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    refopt.problems.data.DataError
        If the pickle is truncated, corrupt or requests a forbidden global.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    with path.open("rb") as fh:
        try:
            return SafeUnpickler(fh).load()
        except pickle.UnpicklingError as exc:
            raise DataError(f"{path}: refused or corrupt pickle: {exc}") from None
        except (EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError) as exc:
            raise DataError(f"{path}: truncated or corrupt pickle ({type(exc).__name__}: {exc})") from None


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    obj = safe_unpickle(path)
    if not isinstance(obj, dict):
        raise DataError(f"{path}: expected a dict, got {type(obj).__name__}")
    get = lambda k: obj.get(k, obj.get(k.decode()))  # noqa: E731 - bytes or str keys
    data, labels = get(b"data"), get(b"labels")
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != _PIXELS:
        raise DataError(f"{path}: 'data' must be a uint8 array of shape (N, {_PIXELS})")
    try:
        y = np.asarray(labels, dtype=np.int64)
    except (TypeError, ValueError):
        raise DataError(f"{path}: 'labels' must be integers") from None
    if y.shape != (data.shape[0],):
        raise DataError(f"{path}: {data.shape[0]} images but labels of shape {y.shape}")
    if y.size and (y.min() < 0 or y.max() > 9):
        raise DataError(f"{path}: labels must lie in 0..9")
    return data, y


def _batch_dir(path: Path) -> Path:
    for cand in (path, path / _DIRNAME):
        if all((cand / f).is_file() for f in (*_TRAIN_FILES, _TEST_FILE)):
            return cand
    missing = [f for f in (*_TRAIN_FILES, _TEST_FILE) if not (path / f).is_file()]
    raise DataError(
        f"{path} is not a CIFAR-10 python directory: expected {', '.join(missing)} "
        f"(directly or under {_DIRNAME}/), or pass the cifar-10-python.tar.gz archive"
    )


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """Return the hexadecimal SHA-256 digest of a file.

    Parameters
    ----------
    path : str or path-like
        The file.
    chunk : int, default 1 MiB
        Read size.

    Returns
    -------
    str
        64 lowercase hex digits.
    """
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def extract_cifar10(archive: str | os.PathLike[str], dest: str | os.PathLike[str]) -> Path:
    """Extract the CIFAR-10 batches of a tarball safely into ``dest``.

    Parameters
    ----------
    archive : str or path-like
        A ``.tar.gz`` (or any tarfile-readable) archive.
    dest : str or path-like
        Destination directory (created if needed).

    Returns
    -------
    pathlib.Path
        The directory holding the batch files.

    Raises
    ------
    FileNotFoundError
        If ``archive`` does not exist.
    refopt.problems.data.DataError
        If the archive is truncated or corrupt, or holds no CIFAR-10 batches.

    Notes
    -----
    Only members named ``[cifar-10-batches-py/]<batch file>`` are extracted, with
    ``filter="data"``, which rejects absolute paths, ``..`` components, links that point
    outside ``dest`` and special files.
    """
    archive, dest = Path(archive), Path(dest)
    if not archive.is_file():
        raise FileNotFoundError(f"no such file: {archive}")
    dest.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(archive, "r:*") as tar:
            wanted = [
                m
                for m in tar.getmembers()
                if m.isfile() and Path(m.name).name in _MEMBERS
                and Path(m.name).parent.as_posix() in (".", "", _DIRNAME)
            ]
            if not wanted:
                raise DataError(f"{archive}: no CIFAR-10 batch files in this archive")
            tar.extractall(dest, members=wanted, filter="data")
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise DataError(f"{archive}: truncated or corrupt archive ({type(exc).__name__}: {exc})") from None
    return _batch_dir(dest)


def download_cifar10(
    dest: str | os.PathLike[str],
    *,
    url: str = CIFAR10_URL,
    sha256: str = CIFAR10_SHA256,
    timeout: float = 60.0,
) -> Path:
    """Download the CIFAR-10 archive, check its SHA-256 and store it atomically.

    Parameters
    ----------
    dest : str or path-like
        Directory to store ``cifar-10-python.tar.gz`` in (created if needed). An
        existing file with the right checksum is reused.
    url : str, default :data:`refopt.problems.data.CIFAR10_URL`
        Source (``file://`` URLs work, which is how it is tested offline).
    sha256 : str, default :data:`refopt.problems.data.CIFAR10_SHA256`
        Expected digest.
    timeout : float, default 60
        Socket timeout in seconds.

    Returns
    -------
    pathlib.Path
        Path of the verified archive.

    Raises
    ------
    refopt.problems.data.DataError
        If the downloaded bytes do not match ``sha256`` (the partial file is removed).
    OSError
        If the download fails.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / "cifar-10-python.tar.gz"
    if target.is_file() and sha256_file(target) == sha256:
        return target
    fd, tmp = tempfile.mkstemp(dir=dest, prefix=".cifar10-", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310
            while block := resp.read(1 << 20):
                out.write(block)
        got = sha256_file(tmp)
        if got != sha256:
            raise DataError(f"checksum mismatch for {url}: expected sha256 {sha256}, got {got}")
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def find_cifar10(path: str | os.PathLike[str] | None = None) -> Path | None:
    """Return where CIFAR-10 is to be read from, or None when nothing was given.

    Parameters
    ----------
    path : str or path-like, optional
        An explicit location; otherwise the ``REFOPT_DATA`` environment variable.

    Returns
    -------
    pathlib.Path or None
        The given path (not yet validated), or None when neither is set.

    Raises
    ------
    FileNotFoundError
        If a location is given but does not exist.
    """
    if path is None:
        path = os.environ.get("REFOPT_DATA") or None
    if path is None:
        return None
    p = Path(path).expanduser()
    if not p.exists():
        raise FileNotFoundError(f"CIFAR-10 data path does not exist: {p}")
    return p


def _standardize(x_train: np.ndarray, x_test: np.ndarray, channels: int) -> tuple[np.ndarray, np.ndarray]:
    n = x_train.shape[1] // channels
    xt = x_train.reshape(len(x_train), channels, n)
    mean = xt.mean(axis=(0, 2), keepdims=True)
    std = xt.std(axis=(0, 2), keepdims=True) + 1e-8

    def scale(x: np.ndarray) -> np.ndarray:
        return ((x.reshape(len(x), channels, n) - mean) / std).reshape(len(x), -1).astype(np.float32)

    return scale(x_train), scale(x_test)


def check_cifar10(path: str | os.PathLike[str]) -> Path:
    """Cheaply check that ``path`` looks like CIFAR-10, without reading the batches.

    Parameters
    ----------
    path : str or path-like
        A batch directory, its parent, or an archive.

    Returns
    -------
    pathlib.Path
        The batch directory, or the archive's path.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    refopt.problems.data.DataError
        If it is a directory without the batch files, or a file that is not a tar archive.
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise FileNotFoundError(f"CIFAR-10 data path does not exist: {p}")
    if p.is_dir():
        return _batch_dir(p)
    if not tarfile.is_tarfile(p):
        raise DataError(f"{p} is neither a CIFAR-10 directory nor a tar archive")
    return p


def load_cifar10(path: str | os.PathLike[str]) -> Dataset:
    """Load CIFAR-10 from a batch directory or the official tarball.

    Parameters
    ----------
    path : str or path-like
        The ``cifar-10-batches-py`` directory, its parent, or the ``.tar.gz`` archive
        (extracted safely into a temporary directory that is removed afterwards).

    Returns
    -------
    refopt.problems.data.Dataset
        50,000 training and 10,000 test rows of 3,072 features (channel-major), each
        channel standardised with the training mean and standard deviation.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    refopt.problems.data.DataError
        If ``path`` is not a CIFAR-10 directory or archive, or a file is corrupt,
        truncated or unsafe.
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise FileNotFoundError(f"CIFAR-10 data path does not exist: {p}")
    if p.is_file():
        with tempfile.TemporaryDirectory(prefix="refopt-cifar10-") as tmp:
            ds = _load_cifar10_dir(extract_cifar10(p, tmp))
        return ds._replace(source=str(p))
    return _load_cifar10_dir(_batch_dir(p))


def _load_cifar10_dir(d: Path) -> Dataset:
    train = [_read_batch(d / f) for f in _TRAIN_FILES]
    x_test, y_test = _read_batch(d / _TEST_FILE)
    x_train = np.concatenate([b[0] for b in train]).astype(np.float32) / 255
    y_train = np.concatenate([b[1] for b in train])
    x_tr, x_te = _standardize(x_train, x_test.astype(np.float32) / 255, channels=3)
    return Dataset(x_tr, y_train, x_te, y_test, "cifar10", str(d), 10)


def load_digits(test_fraction: float = 0.2, seed: int = 0) -> Dataset:
    """Load scikit-learn's 8 x 8 handwritten digits as a train/test split.

    Parameters
    ----------
    test_fraction : float, default 0.2
        Fraction of the 1,797 images held out (stratification is not applied; the
        split is a seeded permutation).
    seed : int, default 0
        Seed of the permutation.

    Returns
    -------
    refopt.problems.data.Dataset
        64 features per image (pixel values 0..16 scaled to [0, 1], then standardised
        with the training mean and standard deviation), 10 classes.

    Raises
    ------
    ValueError
        If ``test_fraction`` is not in (0, 1).
    ImportError
        If scikit-learn is not installed (``pip install refopt[experiments]``).
    """
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    from sklearn.datasets import load_digits as _sk_load_digits

    bunch = _sk_load_digits()
    x = bunch.data.astype(np.float32) / 16
    y = bunch.target.astype(np.int64)
    perm = np.random.default_rng(seed).permutation(len(y))
    n_test = int(round(test_fraction * len(y)))
    te, tr = perm[:n_test], perm[n_test:]
    x_tr, x_te = _standardize(x[tr], x[te], channels=1)
    return Dataset(x_tr, y[tr], x_te, y[te], "digits", "scikit-learn load_digits", 10)


def load_dataset(name: str = "auto", data: str | os.PathLike[str] | None = None) -> Dataset:
    """Return the dataset for the MLP experiment.

    Parameters
    ----------
    name : {"auto", "cifar10", "digits"}, default "auto"
        ``"auto"``: CIFAR-10 when a location is given (``data`` or ``REFOPT_DATA``),
        otherwise the digits fallback; ``"cifar10"`` requires a location.
    data : str or path-like, optional
        The CIFAR-10 location (see :func:`refopt.problems.load_cifar10`).

    Returns
    -------
    refopt.problems.data.Dataset
        The data; ``Dataset.name`` says which one.

    Raises
    ------
    ValueError
        For an unknown ``name``, or ``"cifar10"`` without a location.
    FileNotFoundError, refopt.problems.data.DataError
        As :func:`refopt.problems.load_cifar10`.
    """
    if name not in ("auto", "cifar10", "digits"):
        raise ValueError(f"dataset must be 'auto', 'cifar10' or 'digits', got {name!r}")
    if name == "digits":
        return load_digits()
    where = find_cifar10(data)
    if where is None:
        if name == "cifar10":
            raise ValueError("dataset 'cifar10' needs --data PATH or the REFOPT_DATA variable")
        return load_digits()
    return load_cifar10(where)
