"""Low-level encoding of bundle elements in HDF5: type/version attributes, arrays, JSON, checksums.

Every group or dataset the format defines carries `encoding-type` and `encoding-version`
attributes (the anndata convention); readers dispatch on them and refuse versions they do not
know. Nothing here knows about training or HTML.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import h5py
import numpy as np

from epochscope.archives.errors import DamagedBundleError, NewerElementError

FORMAT_NAME = "epochscope-bundle"
SEGMENT_NAME = "epochscope-segment"
FORMAT_VERSION = "1.2"
# The major version a reader accepts; a newer major is refused with a clear message.
SUPPORTED_MAJOR = 1

# HDF5 1.10 file format: v2 object headers and superblock with metadata checksums, and still
# readable by the HDF5 1.10 command-line tools that Debian ships (h5ls, h5dump).
LIBVER = ("v110", "v110")

# Datasets above this size are chunked per leading index so a single epoch can be read alone.
_SINGLE_CHUNK_BYTES = 16 * 1024 * 1024
_STR = h5py.string_dtype("utf-8")

ELEMENT_VERSIONS = {
    "context": "1.0",
    "metrics": "1.0",
    "series": "1.1",  # 1.1: optional `step` dataset
    "checkpoints": "1.0",
    "checkpoint": "1.0",
    "tree": "2.0",
    "artifacts": "1.0",
    "artifact": "1.0",
    "array-group": "1.0",
    "event-table": "1.0",
    "tables": "1.0",
    "table": "1.1",  # 1.1: optional `append` attribute (rows added to the table so far)
    "split": "1.0",
}
# Older major versions a reader still reads, per element (the current major always is).
_READABLE_MAJORS = {"tree": {"1"}}


def set_attr_str(obj: h5py.HLObject, key: str, text: str) -> None:
    """A fixed-length UTF-8 string attribute, kept inline in the object header.

    h5py's default (variable-length) strings live in the file's global heap, which costs
    more bytes per attribute and one more structure a crash or bit flip could damage.
    """
    raw = text.encode("utf-8")
    obj.attrs.create(key, np.array(raw), dtype=h5py.string_dtype("utf-8", max(1, len(raw))))


def set_encoding(obj: h5py.HLObject, kind: str) -> None:
    """Tag a group with its encoding type and version."""
    set_attr_str(obj, "encoding-type", kind)
    set_attr_str(obj, "encoding-version", ELEMENT_VERSIONS[kind])


def check_encoding(obj: h5py.HLObject, kind: str) -> None:
    """Raise ValueError if `obj` is not the element `kind` in a version this reader knows."""
    found = _attr_str(obj, "encoding-type")
    if found != kind:
        raise ValueError(f"{obj.name}: expected encoding-type {kind!r}, found {found!r}")
    major = encoding_major(obj)
    if major != ELEMENT_VERSIONS[kind].split(".")[0] and major not in _READABLE_MAJORS.get(kind, ()):
        version = _attr_str(obj, "encoding-version") or "?"
        raise NewerElementError(
            f"{obj.name}: {kind} encoding version {version} is newer than this epochscope reads "
            f"({ELEMENT_VERSIONS[kind]})"
        )


def encoding_major(obj: h5py.HLObject) -> str:
    """The major part of an element's `encoding-version` ("?" when absent)."""
    return (_attr_str(obj, "encoding-version") or "?").split(".")[0]


def _attr_str(obj: h5py.HLObject, key: str) -> str | None:
    value = obj.attrs.get(key)
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


def attr_json(obj: h5py.HLObject, key: str, default: Any = None) -> Any:
    """Read a JSON-encoded attribute (or `default` when absent)."""
    text = _attr_str(obj, key)
    return default if text is None else json.loads(text)


def set_attr_json(obj: h5py.HLObject, key: str, value: Any) -> None:
    """Store `value` as a JSON string attribute (strict JSON: NaN becomes null)."""
    set_attr_str(obj, key, dumps(value))


def dumps(value: Any) -> str:
    """JSON with NaN/inf mapped to null, numpy scalars and arrays converted, keys sorted."""
    return json.dumps(_jsonable(value), sort_keys=True, allow_nan=False, separators=(",", ":"))


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def write_array(group: h5py.Group, name: str, data: Any, *, per_row: bool = False,
                fletcher32: bool = True) -> h5py.Dataset:
    """Write one array (see `_write_array`) with its SHA-256 as the `sha256` attribute.

    The checksum is taken from the data in memory, before it reaches the file: since
    format 1.2 every dataset of every file (journal segments included) carries it, so a
    reader or a consolidation can tell damaged bytes from sound ones.
    """
    dset = _write_array(group, name, data, per_row=per_row, fletcher32=fletcher32)
    if "sha256" not in dset.attrs:
        set_attr_str(dset, "sha256", digest(np.asarray(data)))
    return dset


def _write_array(group: h5py.Group, name: str, data: Any, *, per_row: bool = False,
                 fletcher32: bool = True) -> h5py.Dataset:
    """Write one array, chunked, with a fletcher32 checksum on its chunks by default.

    Strings become UTF-8 variable-length strings. Scalars and empty arrays cannot be chunked
    in HDF5, so they are stored contiguous (covered by the SHA-256 manifest only).
    `per_row` chunks along the first axis so one row (e.g. one epoch) reads alone.
    Datasets carry no encoding tags: their dtype and the tagged group around them say it all.
    """
    arr = np.asarray(data)
    if arr.dtype.kind in "UO":
        arr = np.asarray([str(x) for x in arr.ravel()], dtype=object).reshape(arr.shape)
        # HDF5 filters (fletcher32) cannot apply to variable-length strings: these rely on
        # the SHA-256 manifest of the consolidated file.
        return group.create_dataset(name, data=arr, dtype=_STR, track_times=False)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name}: cannot store dtype {arr.dtype} (numbers, bools, strings only)")
    if arr.dtype.byteorder == ">":
        arr = arr.astype(arr.dtype.newbyteorder("<"))
    layout = _chunking(arr, per_row, arr.dtype.itemsize, fletcher32)
    if not fletcher32 and layout.get("chunks") == arr.shape:
        # One unfiltered chunk: hand HDF5 the bytes directly, skipping its conversion pipeline.
        dset = group.create_dataset(name, shape=arr.shape, dtype=arr.dtype, chunks=arr.shape,
                                    track_times=False)
        dset.id.write_direct_chunk((0,) * arr.ndim, np.ascontiguousarray(arr))
        return dset
    # track_times=False: identical content gives identical bytes (reproducible files).
    return group.create_dataset(name, data=arr, track_times=False, **layout)


def _chunking(arr: np.ndarray, per_row: bool, itemsize: int, fletcher32: bool) -> dict:
    if arr.ndim == 0 or arr.size == 0:
        return {}
    nbytes = arr.size * itemsize
    if per_row and arr.ndim > 1:
        chunks = (1, *arr.shape[1:])
    elif nbytes <= _SINGLE_CHUNK_BYTES or arr.ndim == 1:
        rows = max(1, min(arr.shape[0], _SINGLE_CHUNK_BYTES // max(1, nbytes // arr.shape[0])))
        chunks = (rows, *arr.shape[1:])
    else:
        chunks = (1, *arr.shape[1:])
    return {"chunks": chunks, "fletcher32": fletcher32}


def read_array(dset: h5py.Dataset, *, check: bool = True) -> np.ndarray:
    """Read a dataset fully; string datasets come back as an object array of str.

    With `check` (the default) the bytes read are compared with the dataset's `sha256`
    (fletcher32 chunks are checked by HDF5 itself): damage raises DamagedBundleError and
    is never returned as data.
    """
    try:
        if h5py.check_string_dtype(dset.dtype) is not None:
            arr = np.asarray(dset.asstr()[()], dtype=object)
        else:
            # A scalar dataset comes back as a 0-d array (h5py gives a numpy scalar).
            arr = np.asarray(dset[()]) if dset.shape == () else dset[()]
    except (OSError, UnicodeDecodeError) as exc:
        raise damaged(dset, f"unreadable, chunk checksum mismatch or corruption ({short_reason(exc)})") from None
    if check:
        stored = stored_sha256(dset)
        if stored is not None and stored != digest(arr):
            raise damaged(dset, "SHA-256 mismatch (content changed since it was written)")
    return arr


def short_reason(exc: BaseException, limit: int = 120) -> str:
    """An HDF5 error message on one line, clipped."""
    return " ".join(str(exc).split())[:limit]


def sha256_of(dset: h5py.Dataset) -> str:
    """The manifest checksum of a dataset's logical content (see docs/bundle-format.md)."""
    if h5py.check_string_dtype(dset.dtype) is not None:
        return digest(np.asarray(dset.asstr()[()], dtype=object))
    return digest(np.asarray(dset[()]))


def digest(arr: np.ndarray, h: Any = None) -> str:
    """SHA-256 of an array as the manifest defines it: strings element by element (UTF-8,
    each after its length as 8 bytes little-endian), numbers as little-endian C-order bytes."""
    h = hashlib.sha256() if h is None else h
    if arr.dtype.kind in "UOS":
        for text in arr.ravel():
            raw = (text.decode("utf-8") if isinstance(text, bytes) and arr.dtype.kind == "S"
                   else str(text)).encode("utf-8")
            h.update(len(raw).to_bytes(8, "little"))
            h.update(raw)
    else:
        if arr.dtype.byteorder == ">":
            arr = arr.astype(arr.dtype.newbyteorder("<"))
        if arr.size:  # (memoryview cannot cast a view with a zero in its shape)
            h.update(memoryview(np.ascontiguousarray(arr)).cast("B"))
    return h.hexdigest()


def stored_sha256(dset: h5py.Dataset) -> str | None:
    """The `sha256` attribute of a dataset (None when it has none: files before format 1.2
    gave segment datasets no checksum)."""
    return _attr_str(dset, "sha256")


def damaged(dset: h5py.Dataset, what: str) -> DamagedBundleError:
    """The error for a dataset whose bytes failed a check (`what` says which)."""
    where = f"{os.path.basename(dset.file.filename)}:{dset.name}"
    text = f"{where}: {what}"
    return DamagedBundleError(text, [text])


@dataclass(frozen=True)
class Concat:
    """A tree leaf stored as one 1-D dataset: the flattened `parts` (one dtype) end to end.

    Lets a writer keep many small arrays in one dataset (fewer HDF5 objects, faster) without
    first joining them in memory: with `deferred`, each part is written from where it lies.
    It reads back as the joined 1-D array.
    """

    parts: tuple[np.ndarray, ...]

    def __post_init__(self) -> None:
        if not self.parts or len({p.dtype.str for p in self.parts}) != 1:
            raise TypeError("Concat needs at least one part, all of one dtype")

    def joined(self) -> np.ndarray:
        return np.concatenate([p.ravel() for p in self.parts])


def write_tree(group: h5py.Group, tree: Mapping[str, Any], *, deferred: list | None = None) -> None:
    """Write a nested mapping: sub-mappings become groups, arrays datasets, other leaves JSON.

    Only the tree's root group is tagged; its `values` attribute holds every non-array leaf
    (numbers, strings, lists, None) keyed by its '/'-joined path, so that e.g. optimizer
    hyper-parameters round-trip without pickle. Trees hold checkpoints, the hot path of a
    training loop: per-group attributes took a third of a checkpoint's write time and
    fletcher32 would double it (benchmarks/bench_recorder.py), so trees (version 2.0) have
    neither and rely on the SHA-256 manifest.

    With `deferred` (a list), arrays only get their file space reserved (contiguous, no fill)
    and `(offset, array)` is appended; the caller writes the bytes with `write_deferred` once
    HDF5 has closed the file. One pwrite per tensor, straight from its memory, instead of
    HDF5's write path: that made checkpoints faster than torch.save. The arrays must not
    change until then.
    """
    set_encoding(group, "tree")
    values: dict[str, Any] = {}
    _write_level(group, tree, "", values, deferred)
    set_attr_json(group, "values", values)


def _write_level(group: h5py.Group, tree: Mapping[str, Any], prefix: str, values: dict,
                 deferred: list | None) -> None:
    for key, value in tree.items():
        key = check_name(str(key))
        if isinstance(value, Mapping):
            _write_level(group.create_group(key), value, f"{prefix}{key}/", values, deferred)
        elif isinstance(value, Concat):
            if deferred is None or not _reserve(group, key, value.parts, deferred):
                write_array(group, key, value.joined(), fletcher32=False)
        elif isinstance(value, np.ndarray):
            if deferred is None or not _reserve(group, key, (value,), deferred, shape=value.shape):
                write_array(group, key, value, fletcher32=False)
        else:
            values[prefix + key] = value


def _reserve(group: h5py.Group, name: str, parts: tuple[np.ndarray, ...], deferred: list,
             shape: tuple[int, ...] | None = None) -> bool:
    """Create `name` (shape `shape`, or 1-D: the parts end to end) contiguous, with its file
    space allocated now and the parts queued on `deferred`; False if they do not suit."""
    parts = tuple(np.ascontiguousarray(p.astype(p.dtype.newbyteorder("<"), copy=False)) for p in parts)
    dtype, size = parts[0].dtype, sum(p.size for p in parts)
    shape = (size,) if shape is None else shape
    if len(shape) == 0 or size == 0 or dtype.kind not in "biuf":
        return False
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
    dcpl.set_fill_time(h5py.h5d.FILL_TIME_NEVER)
    dcpl.set_obj_track_times(False)  # identical content gives identical bytes
    dsid = h5py.h5d.create(group.id, name.encode("utf-8"), h5py.h5t.py_create(dtype),
                           h5py.h5s.create_simple(shape), dcpl=dcpl)
    # The checksum of the bytes about to be written (C order: the parts end to end).
    h = hashlib.sha256()
    for part in parts:
        h.update(memoryview(part).cast("B"))
    set_attr_str(group[name], "sha256", h.hexdigest())
    offset = dsid.get_offset()
    if offset is None or dsid.get_storage_size() != size * dtype.itemsize:  # not plain bytes
        dsid.write(h5py.h5s.ALL, h5py.h5s.ALL, np.concatenate([p.ravel() for p in parts]).reshape(shape))
        return True
    for part in parts:
        deferred.append((offset, part))
        offset += part.nbytes
    return True


def write_deferred(path: str | os.PathLike, deferred: list) -> None:
    """Write the bytes `write_tree(..., deferred=...)` reserved space for (file closed by HDF5)."""
    fd = os.open(path, os.O_WRONLY)
    try:
        for offset, arr in deferred:
            view = memoryview(arr).cast("B")
            done = 0
            while done < len(view):
                done += os.pwrite(fd, view[done:], offset + done)
    finally:
        os.close(fd)


def read_tree(group: h5py.Group, path: str = "") -> dict[str, Any]:
    """Inverse of `write_tree`: the whole tree, or only the subtree at `path` (e.g. "model")."""
    check_encoding(group, "tree")
    node = group[path] if path else group
    if encoding_major(group) == "1":
        return _read_tree_v1(node)
    values = attr_json(group, "values", {})
    return _read_level(node, f"{path.strip('/')}/" if path else "", values)


def _read_level(node: h5py.Group, prefix: str, values: dict[str, Any]) -> dict[str, Any]:
    out = {key[len(prefix):]: value for key, value in values.items()
           if key.startswith(prefix) and "/" not in key[len(prefix):]}
    for key, item in node.items():
        if item is None:  # a link whose object cannot be read: damaged metadata
            raise DamagedBundleError(f"{node.name}/{key}: unreadable (damaged metadata)",
                                     [f"{os.path.basename(node.file.filename)}:{node.name}/{key}: unreadable"])
        out[key] = (_read_level(item, f"{prefix}{key}/", values) if isinstance(item, h5py.Group)
                    else read_array(item))
    return out


def _read_tree_v1(group: h5py.Group) -> dict[str, Any]:
    # Tree 1.0 (bundle format 1.0): every group tagged, with its own level's `values`.
    check_encoding(group, "tree")
    out: dict[str, Any] = dict(attr_json(group, "values", {}))
    for key, item in group.items():
        out[key] = _read_tree_v1(item) if isinstance(item, h5py.Group) else read_array(item)
    return out


def check_name(name: str) -> str:
    """Series, artifact, table and tree keys become HDF5 link names: no '/', not '.' or '..'."""
    if not isinstance(name, str) or not name or "/" in name or name in (".", "..") or "\x00" in name:
        raise ValueError(f"invalid element name {name!r}: must be non-empty, without '/'")
    return name


def checkpoint_key(epoch: int) -> str:
    """Checkpoint group names sort lexically in epoch order."""
    return f"e{int(epoch):010d}"
