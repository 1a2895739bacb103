"""Compact, script-safe encodings of the numbers and JSON a report embeds.

Arrays travel as base64 typed arrays (float32, float16, uint8 quantised or small ints),
optionally deflated (quantised pictures also as the change from the previous row, i.e. epoch,
which deflates far better when maps evolve slowly), each in its own inert
`<script type="application/octet-stream">` block;
the page decodes them on demand (templates/report_decode.js). JSON destined for a
`<script type="application/json">` block is escaped so that no user string can close the
block or start markup.
"""

from __future__ import annotations

import base64
import hashlib
import json
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from epochscope.archives.format import dumps

__all__ = ["ArrayStore", "EncodedArray", "script_json"]

# float16 is used only when every value survives the round trip within this relative error
# (see ArrayStore.add_float for what "relative" means) and none overflows.
F16_RTOL = 2e-3
_F16_MAX = 65000.0
# Deflate is kept only when it saves at least this share of the bytes.
_DEFLATE_MIN_SAVING = 0.2
# uint8 quantisation: codes 0..254 span [lo, hi]; 255 marks NaN.
_U8_NAN = 255
_U8_LEVELS = 254

_JSON_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"}


def script_json(value: Any) -> str:
    """JSON text safe to place verbatim inside `<script type="application/json">`.

    The bundle format's strict JSON (NaN/inf as null, numpy values converted, non-ASCII and
    so U+2028/U+2029 as \\u escapes) with `<`, `>` and `&` escaped too, so a string such as
    `</script><img onerror=...>` stays data.
    """
    text = dumps(value)
    for char, escaped in _JSON_ESCAPES.items():
        text = text.replace(char, escaped)
    return text


@dataclass
class EncodedArray:
    """One embedded array: its descriptor (JSON, read by the page) and base64 payload."""

    id: str
    meta: dict[str, Any]
    payload: str = field(repr=False)

    @property
    def size(self) -> int:
        """Bytes this array adds to the page (payload plus a generous descriptor estimate)."""
        return len(self.payload) + 80


class ArrayStore:
    """Collects the arrays of one report, encoding each once and sharing identical ones.

    Every `add_*` method returns a small reference (`{"$a": id}`) for the chart specs; the
    page resolves references to typed arrays. Identical arrays (same encoding and bytes) are
    stored once, so e.g. many metric series on the same epochs share one epoch array.
    """

    def __init__(self) -> None:
        self.arrays: dict[str, EncodedArray] = {}
        self._by_digest: dict[str, str] = {}
        self.row_deltas = True  # quantised pictures may travel as each row's change (see add_quantized)

    @property
    def total_bytes(self) -> int:
        return sum(a.size for a in self.arrays.values())

    # -- public encoders ---------------------------------------------------------------------
    def add_float(self, values: Any, *, rtol: float = F16_RTOL, floor: float = 1e-3,
                  shape: tuple[int, ...] | None = None) -> dict[str, str]:
        """Floats as float16 when that keeps every value within `rtol` (relative to the larger
        of the value and `floor` times the array's largest magnitude), else float32.

        The floor lets display data ignore precision lost in values negligible against the
        array's scale; `floor=0` demands the precision of every value (numbers users export).
        """
        arr = np.asarray(values, dtype=np.float64)
        if arr.size and _fits_float16(arr, rtol, floor):
            return self._add(arr.astype("<f2"), "f16", shape or arr.shape)
        return self._add(arr.astype("<f4"), "f32", shape or arr.shape)

    def add_int(self, values: Any) -> dict[str, str]:
        """Integers (epochs, indices): an arithmetic range when they are one, else the
        narrowest of uint8/uint16/int32."""
        arr = np.asarray(values, dtype=np.int64).ravel()
        if arr.size >= 3:
            steps = np.diff(arr)
            if np.all(steps == steps[0]):
                meta = {"enc": "range", "start": int(arr[0]), "step": int(steps[0]), "n": int(arr.size)}
                return self._add_meta(meta, "")
        if arr.size and arr.min() >= 0 and arr.max() < 256:
            return self._add(arr.astype("u1"), "u8", arr.shape)
        if arr.size and arr.min() >= 0 and arr.max() < 65536:
            return self._add(arr.astype("<u2"), "u16", arr.shape)
        return self._add(arr.astype("<i4"), "i32", arr.shape)

    def add_quantized(self, values: Any, *, lead: int = 1,
                      lo: float | None = None, hi: float | None = None) -> dict[str, str]:
        """Floats as uint8 codes for colour-mapped pictures (heatmaps): 1/254 of the range.

        Each slice over the first `lead` axes (one epoch, or one epoch and neuron) gets its
        own [lo, hi], so maps whose scale changes a lot over training keep their contrast;
        `lead=0` shares one range. NaN is kept (code 255). Fixed `lo`/`hi` (e.g. 0 and 1 for
        fractions) override the data's range.
        """
        arr = np.asarray(values, dtype=np.float32)
        n = int(np.prod(arr.shape[:lead])) if arr.ndim > lead else 1
        flat = arr.reshape(n, -1)
        finite = np.isfinite(flat)
        all_finite = bool(finite.all())
        with np.errstate(all="ignore"):
            if lo is None or hi is None:
                masked_lo = flat if all_finite else np.where(finite, flat, np.inf)
                masked_hi = flat if all_finite else np.where(finite, flat, -np.inf)
                los = masked_lo.min(1) if lo is None else np.full(n, lo, np.float32)
                his = masked_hi.max(1) if hi is None else np.full(n, hi, np.float32)
                los = np.where(np.isfinite(los), los, 0).astype(np.float32)
                his = np.where(np.isfinite(his), his, 0).astype(np.float32)
            else:
                los, his = np.full(n, lo, np.float32), np.full(n, hi, np.float32)
            scale = np.where(his > los, _U8_LEVELS / (his - los), 0).astype(np.float32)
            codes = (flat - los[:, None]) * scale[:, None] + 0.5
        np.clip(codes, 0, _U8_LEVELS, out=codes)
        if not all_finite:
            codes[~finite] = _U8_NAN
        out = codes.astype("u1")
        meta = {"lo": [float(f"{x:.7g}") for x in los], "hi": [float(f"{x:.7g}") for x in his]}
        if self.row_deltas and arr.ndim > 1 and arr.shape[0] > 1:
            rows = out.reshape(arr.shape[0], -1)
            # Codes minus the previous row's, modulo 256 (lossless): kept when it deflates smaller.
            delta = rows.copy()
            np.subtract(rows[1:], rows[:-1], out=delta[1:])
            plain, changes = _deflate(rows.tobytes()), _deflate(delta.tobytes())
            if len(changes) < len(plain):
                return self._add(delta, "u8q", arr.shape, extra={**meta, "d": 1}, deflated=changes)
            return self._add(rows, "u8q", arr.shape, extra=meta, deflated=plain)
        return self._add(out.reshape(arr.shape), "u8q", arr.shape, extra=meta)

    def estimate(self, values: Any, kind: str, **options: Any) -> int:
        """Bytes `values` would add if encoded as `kind` ("float" or "quantized")."""
        probe = ArrayStore()
        # Estimates encode a few rows spread over training: the change from one to the next
        # says nothing of the change between neighbouring epochs, so they are costed plain.
        probe.row_deltas = False
        (probe.add_float if kind == "float" else probe.add_quantized)(values, **options)
        return probe.total_bytes

    # -- internals ---------------------------------------------------------------------------
    def _add(self, arr: np.ndarray, enc: str, shape: tuple[int, ...], extra: dict[str, Any] | None = None,
             deflated: bytes | None = None) -> dict[str, str]:
        raw = np.ascontiguousarray(arr).tobytes()
        meta: dict[str, Any] = {"enc": enc, "shape": [int(s) for s in shape]}
        if extra:
            meta.update(extra)
        if deflated is None:
            deflated = _deflate(raw)
        if len(raw) > 256 and len(deflated) <= (1 - _DEFLATE_MIN_SAVING) * len(raw):
            meta["z"] = 1
            raw = deflated
        return self._add_meta(meta, base64.b64encode(raw).decode("ascii"))

    def _add_meta(self, meta: dict[str, Any], payload: str) -> dict[str, str]:
        digest = hashlib.sha1(
            (json.dumps(meta, sort_keys=True) + payload).encode("ascii", "replace")
        ).hexdigest()
        if digest not in self._by_digest:
            aid = f"a{len(self.arrays)}"
            self._by_digest[digest] = aid
            self.arrays[aid] = EncodedArray(aid, meta, payload)
        return {"$a": self._by_digest[digest]}


def _deflate(raw: bytes) -> bytes:
    """Raw deflate (no header), as the page's DecompressionStream("deflate-raw") reads it."""
    packed = zlib.compressobj(6, zlib.DEFLATED, -15)
    return packed.compress(raw) + packed.flush()


def _fits_float16(arr: np.ndarray, rtol: float, floor: float) -> bool:
    finite = arr[np.isfinite(arr)]
    if finite.size == 0:
        return True
    mags = np.abs(finite)
    top = float(mags.max())
    if top > _F16_MAX:
        return False
    back = finite.astype(np.float16).astype(np.float64)
    return bool(np.all(np.abs(back - finite) <= rtol * np.maximum(mags, floor * top)))
