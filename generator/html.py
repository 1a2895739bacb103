"""Shared plumbing of every HTML page epochscope writes (run reports, comparisons, the index).

One Jinja environment (autoescaping everywhere, strict about undefined names), plotly.js
made safe to inline (the vendored partial bundle, or the plotly package's full one), a
Content-Security-Policy built from the hashes of the page's own inline scripts (no network,
no foreign script), and atomic writes so a reader never sees half a page.

Pages put `CSP_SLOT` in their `<meta http-equiv="Content-Security-Policy">` and replace it
with `csp(html, external_scripts=...)` once the rest of the page is rendered.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import tempfile
import zlib
from functools import cache
from importlib import resources
from pathlib import Path

import jinja2

from epochscope.errors import EpochscopeError

__all__ = ["CSP_SLOT", "PLOTLY_BUNDLES", "csp", "environment", "make_parent", "plotly_js", "plotly_packed",
           "safe_href", "write_atomic", "write_shared_plotly"]

CSP_SLOT = "__EPOCHSCOPE_CSP__"
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.S)
# plotly.js sits inert in this block; chart_preview.js runs its text after the first paint.
_DEFERRED_PLOTLY = re.compile(r'<script type="text/plain" id="es-plotly">(.*?)</script>', re.S)
# ... or deflated and base64'd (a third of the bytes): the page inflates it, then runs it.
PACKED_PLOTLY = "deflate-raw"
_PACKED_PLOTLY = re.compile(r'<script type="text/plain" id="es-plotly" data-enc="deflate-raw">(.*?)</script>', re.S)
# A link a page may show: relative, or an explicit http(s)/file URL; never javascript:/data:.
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


@cache
def environment() -> jinja2.Environment:
    """The one Jinja environment: autoescaping on everywhere, strict about undefined names."""
    return jinja2.Environment(
        loader=jinja2.PackageLoader("epochscope.templates", "."),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


# The partial bundle built from plotly.js's own npm package (templates/vendor/README.md):
# only the trace types the pages draw (scatter, bar, heatmap), a quarter of the full
# bundle's size and a fraction of its evaluation time. "full" is the whole plotly.js of the
# installed plotly package, for custom layouts whose charts need other trace types.
PLOTLY_BUNDLES = ("partial", "full")
PARTIAL_PLOTLY_VERSION = "4.1.1"
_PARTIAL_FILE = f"plotly-partial-{PARTIAL_PLOTLY_VERSION}.min.js"


def _check_bundle(bundle: str) -> None:
    if bundle not in PLOTLY_BUNDLES:
        raise EpochscopeError(f"unknown plotly bundle {bundle!r}; use one of: {', '.join(PLOTLY_BUNDLES)}")


@cache
def plotly_js(bundle: str = "partial") -> str:
    """plotly.js made safe to inline: the vendored partial bundle, or the installed plotly
    package's full one (`bundle="full"`)."""
    _check_bundle(bundle)
    try:
        if bundle == "full":
            source = resources.files("plotly").joinpath("package_data", "plotly.min.js")
        else:
            source = resources.files("epochscope.templates").joinpath("vendor", _PARTIAL_FILE)
        text = source.read_text("utf-8")
    except (FileNotFoundError, ModuleNotFoundError) as exc:
        where = "the installed plotly package" if bundle == "full" else "epochscope's templates/vendor"
        raise EpochscopeError(f"plotly.js not found in {where} ({exc})") from None
    # Inside <script>, only "</script" (any case) or "<!--" could end or confuse the block.
    return re.sub(r"</(script)", r"<\\/\1", text, flags=re.I).replace("<!--", "<\\!--")


@cache
def plotly_packed(bundle: str = "partial") -> str:
    """`plotly_js(bundle)` deflated (raw, level 9) and base64'd, for an inert block the page
    inflates with the browser's DecompressionStream before running it (no network)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    raw = packer.compress(plotly_js(bundle).encode("utf-8")) + packer.flush()
    return base64.b64encode(raw).decode("ascii")


def _unpacked(payload: str) -> str:
    return zlib.decompress(base64.b64decode(payload), -15).decode("utf-8")


def csp(html: str, *, external_scripts: bool) -> str:
    """A policy that forbids all network access and every script except the page's own."""
    texts = [m.group(1) for m in (*_INLINE_SCRIPT.finditer(html), *_DEFERRED_PLOTLY.finditer(html))]
    texts += [_unpacked(m.group(1)) for m in _PACKED_PLOTLY.finditer(html) if m.group(1)]
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode() + "'"
        for text in texts if text
    )
    scripts = hashes + (" 'self' file:" if external_scripts else "")
    # plotly.js compiles a few functions at run time ('unsafe-eval'), injects <style> elements
    # and draws heatmaps as data: images.
    return (f"default-src 'none'; script-src {scripts} 'unsafe-eval'; style-src 'unsafe-inline'; "
            "img-src data: blob:; font-src data:; connect-src 'none'; base-uri 'none'; form-action 'none'")


def safe_href(href: object) -> str | None:
    """`href` when a page may link to it (relative, http(s) or file URL), else None.

    Escaping keeps a link from breaking out of its attribute; this keeps it from being a
    `javascript:` or `data:` URL.
    """
    text = str(href).strip()
    if not text:
        return None
    scheme = _SCHEME.match(text)
    if scheme and scheme.group(0).lower() not in ("http:", "https:", "file:"):
        return None
    return text


def make_parent(output: Path) -> None:
    """Create `output`'s directory (and its parents); EpochscopeError when that fails."""
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EpochscopeError(f"cannot create the directory {output.parent}: {exc.strerror or exc}") from None


def write_atomic(output: Path, text: str) -> None:
    """Write via a temporary file in the same directory, so a reader never sees half a page."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{output.name}.", suffix=".tmp", dir=output.parent)
    except OSError as exc:
        raise EpochscopeError(f"cannot write the report to {output}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, output)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise EpochscopeError(f"cannot write the report to {output}: {exc.strerror or exc}") from None


def write_shared_plotly(directory: Path, page_dir: Path, bundle: str = "partial") -> str:
    """Write plotly.js (`bundle`: "partial" or "full") into `directory` once per version;
    return its URL relative to the page's directory."""
    _check_bundle(bundle)
    if bundle == "full":
        from plotly import __version__ as plotly_version

        name = f"plotly-{plotly_version}.min.js"
    else:
        name = _PARTIAL_FILE
    target = directory / name
    make_parent(target)
    text = plotly_js(bundle)
    if not target.exists() or target.stat().st_size != len(text.encode("utf-8")):
        write_atomic(target, text)
    rel = os.path.relpath(target.resolve(), page_dir.resolve())
    return Path(rel).as_posix()
