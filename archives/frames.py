"""Bundles as pandas and xarray objects, for ad-hoc analysis in notebooks (both optional:
`pip install "epochscope[notebook]"`)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

from epochscope.optional import require

if TYPE_CHECKING:  # pragma: no cover
    from epochscope.archives.reader import Artifact, Bundle

__all__ = ["artifact_dataset", "series_frame"]


def series_frame(bundle: Bundle, names: Iterable[str] | None = None, *, long: bool = False) -> Any:
    """The metric series as a pandas DataFrame.

    Wide (default): indexed by epoch (every epoch any chosen series has), one float column per
    series, NaN where a series has no point; a series logged twice at one epoch keeps the
    later value. `long=True`: one row per stored point (series, epoch, value) in logging
    order, nothing merged.
    """
    pd = require("pandas", extra="notebook", purpose="Bundle.series_frame()")
    chosen = list(bundle.series_names if names is None else names)
    data = {n: bundle.series(n) for n in chosen}  # KeyError names what exists
    if long:
        parts = [pd.DataFrame({"series": pd.Categorical([n] * len(e), categories=chosen),
                               "epoch": e, "value": v}) for n, (e, v) in data.items()]
        if not parts:
            return pd.DataFrame({"series": pd.Categorical([], categories=chosen),
                                 "epoch": np.zeros(0, np.int64), "value": np.zeros(0)})
        return pd.concat(parts, ignore_index=True)
    columns = {}
    for n, (e, v) in data.items():
        s = pd.Series(v, index=pd.Index(e, name="epoch"), name=n)
        columns[n] = s[~s.index.duplicated(keep="last")]
    if not columns:
        return pd.DataFrame(index=pd.Index(np.zeros(0, np.int64), name="epoch"))
    frame = pd.concat(columns, axis=1).sort_index()
    frame.index.name = "epoch"
    return frame


def artifact_dataset(artifact: Artifact) -> Any:
    """One analyzer's results as an xarray Dataset: each per-epoch array a variable over
    ("epoch", "<name>_dim_1", ...), each summary array a variable "summary.<name>"; the
    analyzer's name, version, params and scalars are attributes (JSON text for the last two,
    so the Dataset can be written to netCDF as is)."""
    xr = require("xarray", extra="notebook", purpose="Artifact.to_xarray()")
    variables = {}
    for name in artifact.names:
        epochs, values = artifact.per_epoch(name)
        values = np.asarray(values)
        dims = ("epoch", *(f"{name}_dim_{i}" for i in range(1, values.ndim)))
        variables[name] = xr.DataArray(values, dims=dims, coords={"epoch": epochs})
    for name in artifact.summary_names:
        values = np.asarray(artifact.summary(name))
        key = f"summary.{name}"
        variables[key] = xr.DataArray(values, dims=tuple(f"{key}_dim_{i}" for i in range(values.ndim)))
    attrs = {"analyzer": artifact.name, "version": artifact.version,
             "params": json.dumps(artifact.params, sort_keys=True, default=str),
             "scalars": json.dumps(artifact.scalars, sort_keys=True, default=str)}
    return xr.Dataset(variables, attrs=attrs)
