/* epochscope report, part 1 of 3: decoding the embedded arrays.
 *
 * Every array lives in its own script block (type application/octet-stream, id "aN") as
 * base64 text; its descriptor (encoding, shape, optional deflate, quantisation range) is in
 * the page's JSON; quantised pictures may be stored as each row's change from the previous
 * row ("d"). Arrays are decoded on first use and cached; float16 and uint8-quantised
 * data become Float32Array, integers Int32Array.
 */
"use strict";
window.ES = window.ES || {};
(function (ES) {
  const LITTLE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
  let F16 = null; // lookup table: float16 bits -> value

  function f16table() {
    if (F16) return F16;
    F16 = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) {
      const sign = h & 0x8000 ? -1 : 1;
      const exp = (h >> 10) & 0x1f;
      const frac = h & 0x3ff;
      if (exp === 0) F16[h] = sign * frac * Math.pow(2, -24);
      else if (exp === 31) F16[h] = frac ? NaN : sign * Infinity;
      else F16[h] = sign * (1 + frac / 1024) * Math.pow(2, exp - 15);
    }
    return F16;
  }

  function base64Bytes(text) {
    const bin = atob(text.replace(/\s+/g, ""));
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }

  async function inflate(bytes) {
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate-raw"));
    return new Uint8Array(await new Response(stream).arrayBuffer());
  }

  // Little-endian words of `bytes` as a typed array of `Type` (copying on big-endian hosts).
  function words(bytes, Type, getter) {
    const n = bytes.byteLength / Type.BYTES_PER_ELEMENT;
    if (LITTLE) return new Type(bytes.buffer, bytes.byteOffset, n);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const out = new Type(n);
    for (let i = 0; i < n; i++) out[i] = view[getter](i * Type.BYTES_PER_ELEMENT, true);
    return out;
  }

  function typed(meta, bytes) {
    switch (meta.enc) {
      case "f32": return words(bytes, Float32Array, "getFloat32");
      case "f16": {
        const table = f16table();
        const raw = words(bytes, Uint16Array, "getUint16");
        const out = new Float32Array(raw.length);
        for (let i = 0; i < raw.length; i++) out[i] = table[raw[i]];
        return out;
      }
      case "u8": return Int32Array.from(bytes);
      case "u16": return Int32Array.from(words(bytes, Uint16Array, "getUint16"));
      case "i32": return words(bytes, Int32Array, "getInt32");
      case "u8q": {
        if (meta.d) {
          // Each row (epoch) was stored as its change from the previous one, modulo 256.
          const per = bytes.length / meta.shape[0];
          for (let i = per; i < bytes.length; i++) bytes[i] = (bytes[i] + bytes[i - per]) & 255;
        }
        const out = new Float32Array(bytes.length);
        const slices = meta.lo.length;
        const per = bytes.length / slices;
        for (let s = 0; s < slices; s++) {
          const lo = meta.lo[s];
          const step = (meta.hi[s] - lo) / 254;
          for (let i = s * per, end = i + per; i < end; i++) {
            const c = bytes[i];
            out[i] = c === 255 ? NaN : lo + c * step;
          }
        }
        return out;
      }
      default: throw new Error("unknown array encoding " + meta.enc);
    }
  }

  function ArrayStore(metas) {
    this.metas = metas;
    this.done = new Map(); // id -> {data, shape}
    this.pending = new Map(); // id -> Promise
  }

  // Decode array `id` (a Promise of {data, shape}); each array is decoded once.
  ArrayStore.prototype.load = function (id) {
    if (this.done.has(id)) return Promise.resolve(this.done.get(id));
    if (this.pending.has(id)) return this.pending.get(id);
    const meta = this.metas[id];
    const job = (async () => {
      let value;
      if (meta.enc === "range") {
        const data = new Int32Array(meta.n);
        for (let i = 0; i < meta.n; i++) data[i] = meta.start + i * meta.step;
        value = { data: data, shape: [meta.n] };
      } else {
        const el = document.getElementById(id);
        let bytes = base64Bytes(el.textContent);
        if (meta.z) bytes = await inflate(bytes);
        value = { data: typed(meta, bytes), shape: meta.shape };
      }
      this.done.set(id, value);
      this.pending.delete(id);
      return value;
    })();
    this.pending.set(id, job);
    return job;
  };

  // Collect the array ids referenced anywhere inside `spec` ({"$a": id} objects).
  function refs(spec, out) {
    if (Array.isArray(spec)) spec.forEach((v) => refs(v, out));
    else if (spec && typeof spec === "object") {
      if (typeof spec.$a === "string") out.add(spec.$a);
      else Object.keys(spec).forEach((k) => refs(spec[k], out));
    }
    return out;
  }

  // A deep copy of `spec` with every reference replaced by its decoded {data, shape}.
  ArrayStore.prototype.resolve = async function (spec) {
    const ids = Array.from(refs(spec, new Set()));
    await Promise.all(ids.map((id) => this.load(id)));
    const swap = (v) => {
      if (Array.isArray(v)) return v.map(swap);
      if (v && typeof v === "object") {
        if (typeof v.$a === "string") return this.done.get(v.$a);
        const o = {};
        Object.keys(v).forEach((k) => { o[k] = swap(v[k]); });
        return o;
      }
      return v;
    };
    return swap(spec);
  };

  // Row `i` of a 2-D+ array as a subarray view (no copy).
  function row(arr, i) {
    const per = arr.data.length / arr.shape[0];
    return arr.data.subarray(i * per, (i + 1) * per);
  }

  // Column `j` of a 2-D (rows, cols) array.
  function column(arr, j) {
    const cols = arr.shape.length > 1 ? arr.shape[1] : 1;
    const n = arr.shape[0];
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = arr.data[i * cols + j];
    return out;
  }

  // Index of the value in sorted `xs` nearest to `x`.
  function nearest(xs, x) {
    let lo = 0, hi = xs.length - 1;
    if (hi < 0) return -1;
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (xs[mid] <= x) lo = mid; else hi = mid;
    }
    return Math.abs(xs[hi] - x) < Math.abs(xs[lo] - x) ? hi : lo;
  }

  ES.ArrayStore = ArrayStore;
  ES.row = row;
  ES.column = column;
  ES.nearest = nearest;
})(window.ES);
