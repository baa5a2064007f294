"""Read a PyTorch state dict (`torch.save` of tensors) into NumPy arrays,
without torch.

FID's reference weights are published as `.pth` files (pytorch-fid's
`pt_inception-2015-12-05-6726825d.pth`, torch-fidelity's copy of it), and
evaluation must not need torch. Both of torch's layouts are read: the zip
archive of torch >= 1.6 (`archive/data.pkl` plus one file per storage) and
the older single stream (magic number, pickles, then the storages' bytes).

The pickle is read with a closed list of classes (an `OrderedDict`, tensors
and storages), so a hostile file cannot run code, as
`torch.load(weights_only=True)` also refuses to.
"""

import collections
import io
import pickle
import struct
import zipfile

import numpy as np

# torch's legacy storage classes, as the pickle names them, and their dtypes.
_STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


class CheckpointError(ValueError):
    """The file is not a PyTorch state dict of plain tensors."""


class _StorageType:
    def __init__(self, name):
        self.dtype = np.dtype(_STORAGE_DTYPES[name])


class _Storage:
    """A storage's bytes, read lazily: in the legacy layout they follow the pickle."""

    def __init__(self, dtype):
        self.dtype = dtype
        self.array = None


class _Tensor:
    """A tensor's place in its storage; made an array once every storage is read
    (in the legacy layout the bytes come after the pickle)."""

    def __init__(self, storage, offset, size, stride, *unused):
        if not isinstance(storage, _Storage):
            raise CheckpointError("a tensor is not built on a storage")
        try:
            self.offset, self.size, self.stride = int(offset), tuple(map(int, size)), tuple(map(int, stride))
        except (TypeError, ValueError):
            raise CheckpointError("a tensor's shape is not a tuple of integers") from None
        if len(self.size) != len(self.stride) or self.offset < 0 or any(n < 0 for n in self.size + self.stride):
            raise CheckpointError("a tensor's offset, shape or strides are negative or do not match")
        self.storage = storage

    def array(self):
        flat = self.storage.array
        if flat is None:
            raise CheckpointError("a tensor refers to a storage that the file does not hold")
        if any(n == 0 for n in self.size):
            return np.zeros(self.size, flat.dtype)
        last = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride))
        # A state dict's tensors are views of their storage: never more elements than it holds
        # (a stride of 0 with a huge shape would otherwise allocate without bound).
        if last >= len(flat) or int(np.prod(self.size, dtype=np.float64)) > len(flat):
            raise CheckpointError("a tensor reaches past the end of its storage")
        strides = [s * flat.itemsize for s in self.stride]
        return np.lib.stride_tricks.as_strided(flat[self.offset:], self.size, strides).copy()


def _rebuild_parameter(data, requires_grad, backward_hooks, *unused):
    return data


class _Unpickler(pickle.Unpickler):
    _ALLOWED = {
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("torch._utils", "_rebuild_tensor_v2"): _Tensor,
        ("torch._utils", "_rebuild_tensor"): _Tensor,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    }

    def __init__(self, file, storages):
        super().__init__(file)
        self.storages = storages  # key -> _Storage, filled as the pickle names them

    def find_class(self, module, name):
        if (module, name) in self._ALLOWED:
            return self._ALLOWED[(module, name)]
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        raise CheckpointError(f"the file holds a {module}.{name}, which a state dict of tensors does not; "
                              "only plain tensor state dicts are read (as torch.load(weights_only=True) does)")

    def persistent_load(self, pid):
        if not isinstance(pid, tuple) or not pid or pid[0] != "storage":
            raise CheckpointError(f"unknown persistent id {pid!r:.60}")
        storage_type, key = pid[1], str(pid[2])
        if not isinstance(storage_type, _StorageType):
            raise CheckpointError(f"unsupported storage type {storage_type!r:.60}")
        if key not in self.storages:
            self.storages[key] = _Storage(storage_type.dtype)
        return self.storages[key]


def _read_zip(path):
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        pickles = [name for name in names if name.endswith("/data.pkl") or name == "data.pkl"]
        if len(pickles) != 1:
            raise CheckpointError("a torch zip checkpoint holds one data.pkl")
        prefix = pickles[0][: -len("data.pkl")]
        storages = {}
        state = _Unpickler(io.BytesIO(archive.read(pickles[0])), storages).load()
        byteorder = archive.read(prefix + "byteorder").decode().strip() if prefix + "byteorder" in names else "little"
        for key, storage in storages.items():
            member = f"{prefix}data/{key}"
            if member not in names:
                raise CheckpointError(f"storage {key} is missing from the archive (a truncated download?)")
            dtype = storage.dtype.newbyteorder("<" if byteorder == "little" else ">")
            storage.array = np.frombuffer(archive.read(member), dtype=dtype).astype(storage.dtype.newbyteorder("="))
    return state


class _PlainUnpickler(pickle.Unpickler):
    """The legacy layout's header and key list: plain values, no classes at all."""

    def find_class(self, module, name):
        raise CheckpointError(f"the file's header holds a {module}.{name}: not a PyTorch checkpoint")

    def persistent_load(self, pid):
        raise CheckpointError("the file's header refers to storages: not a PyTorch checkpoint")


def _plain(file, kind):
    value = _PlainUnpickler(file).load()
    if not isinstance(value, kind):
        raise CheckpointError("not a PyTorch checkpoint")
    return value


def _read_legacy(path):
    with open(path, "rb") as file:
        if _plain(file, int) != _LEGACY_MAGIC:
            raise CheckpointError("not a PyTorch checkpoint")
        _plain(file, int)  # protocol version
        _plain(file, dict)  # sys_info: byte order and type sizes (little-endian on every platform torch supports)
        storages = {}
        state = _Unpickler(file, storages).load()
        keys = _plain(file, list)
        for key in keys:
            storage = storages.get(str(key))
            header = file.read(8)
            if storage is None or len(header) != 8:
                raise CheckpointError("the storages after the pickle are incomplete (a truncated download?)")
            (count,) = struct.unpack("<q", header)
            data = file.read(count * storage.dtype.itemsize)
            if len(data) != count * storage.dtype.itemsize:
                raise CheckpointError("the file ends inside a storage (a truncated download?)")
            storage.array = np.frombuffer(data, dtype=storage.dtype.newbyteorder("<")).astype(storage.dtype)
    return state


def load_state_dict(path):
    """`{name: np.ndarray}` from a `.pth` file written by `torch.save(state_dict)`.

    Raises `CheckpointError` (a ValueError) naming what is wrong with a file
    that is not a plain state dict, or that is truncated.
    """
    try:
        state = _read_zip(path) if zipfile.is_zipfile(path) else _read_legacy(path)
    except CheckpointError as error:
        raise CheckpointError(f"{path}: {error}") from None
    except (pickle.UnpicklingError, EOFError, zipfile.BadZipFile, struct.error, KeyError, IndexError,
            AttributeError, TypeError, ValueError, OverflowError, MemoryError) as error:
        raise CheckpointError(f"{path} is not a readable PyTorch state dict ({type(error).__name__}: {error})") from None
    if not isinstance(state, dict) or not all(isinstance(value, _Tensor) for value in state.values()):
        raise CheckpointError(f"{path} does not hold a state dict of tensors")
    try:
        return {str(name): tensor.array() for name, tensor in state.items()}
    except CheckpointError as error:
        raise CheckpointError(f"{path}: {error}") from None
