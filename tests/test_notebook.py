"""Notebook helpers: series as a pandas DataFrame, analyzer results as an xarray Dataset, and
the escaped inline view of a bundle."""

from __future__ import annotations

import json
import sys
from html.parser import HTMLParser

import numpy as np
import pytest

from epochscope.archives import ArtifactUpdate, BundleWriter, Segment, open_bundle
from epochscope.errors import EpochscopeError

EVIL = "</code></table><script>alert(1)</script><img src=x onerror=alert(2)>"


@pytest.fixture
def bundle(tmp_path):
    path = tmp_path / "run.h5"
    with BundleWriter(path, create=True) as w:
        w.write(Segment(
            context={"config": {"name": EVIL, "lr": 0.01, EVIL: [EVIL, 1]}, "seeds": {}},
            metrics={"train_loss": (np.array([1, 2, 3, 4]), np.array([4.0, 3.0, 2.0, 1.0])),
                     "test_loss": (np.array([2, 4, 4]), np.array([5.0, 4.0, 3.5])),  # epoch 4 twice
                     EVIL.replace("/", "|"): (np.array([1]), np.array([7.0]))},
            events=[{"epoch": 2, "kind": EVIL, "message": EVIL, "payload": {}}],
            artifacts={"norms": ArtifactUpdate("2", np.array([0, 2, 4]),
                                               {"weights": np.arange(12.0).reshape(3, 2, 2),
                                                "gap": np.array([0.5, 0.25, 0.125])},
                                               summary={"tensors": np.array(["W_E", "W_U"], dtype=object)},
                                               scalars={"turn": 2}, params={"k": 3})},
        ))
        w.consolidate()
    return path


def test_series_frame_wide_and_long(bundle):
    pd = pytest.importorskip("pandas")
    with open_bundle(bundle) as b:
        wide = b.series_frame(["train_loss", "test_loss"])
        assert wide.index.name == "epoch" and wide.index.tolist() == [1, 2, 3, 4]
        assert wide["train_loss"].tolist() == [4.0, 3.0, 2.0, 1.0]
        t = wide["test_loss"]
        assert np.isnan(t[1]) and t[2] == 5.0 and np.isnan(t[3]) and t[4] == 3.5  # later value wins
        long = b.series_frame(["test_loss"], long=True)
        assert long["epoch"].tolist() == [2, 4, 4] and long["value"].tolist() == [5.0, 4.0, 3.5]
        assert set(b.series_frame().columns) == set(b.series_names)
        assert isinstance(b.series_frame(long=True), pd.DataFrame)
        with pytest.raises(KeyError, match="no metric series 'nope'"):
            b.series_frame(["nope"])


def test_artifact_to_xarray(bundle):
    pytest.importorskip("xarray")
    with open_bundle(bundle) as b:
        ds = b.artifact("norms").to_xarray()
    assert ds["weights"].dims == ("epoch", "weights_dim_1", "weights_dim_2")
    assert ds["epoch"].values.tolist() == [0, 2, 4]
    assert ds["weights"].sel(epoch=2).values.tolist() == [[4.0, 5.0], [6.0, 7.0]]
    assert ds["gap"].values.tolist() == [0.5, 0.25, 0.125]
    assert ds["summary.tensors"].values.tolist() == ["W_E", "W_U"]
    assert ds.attrs["analyzer"] == "norms" and ds.attrs["version"] == "2"
    assert json.loads(ds.attrs["params"]) == {"k": 3} and json.loads(ds.attrs["scalars"]) == {"turn": 2}


@pytest.mark.parametrize("module, call", [("pandas", lambda b: b.series_frame()),
                                          ("xarray", lambda b: b.artifact("norms").to_xarray())])
def test_missing_package_names_the_extra(bundle, monkeypatch, module, call):
    monkeypatch.setitem(sys.modules, module, None)  # as if not installed
    with open_bundle(bundle) as b, pytest.raises(EpochscopeError) as info:
        call(b)
    message = str(info.value)
    assert "\n" not in message and 'pip install "epochscope[notebook]"' in message and module in message


class _Elements(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[str] = []
        self.text = ""

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs += [k for k, _ in attrs]

    def handle_data(self, data):
        self.text += data


def test_repr_html_escapes_everything(bundle):
    with open_bundle(bundle) as b:
        html = b._repr_html_()
    parsed = _Elements()
    parsed.feed(html)
    assert "script" not in parsed.tags and "img" not in parsed.tags
    assert not [a for a in parsed.attrs if a.startswith("on")]
    assert EVIL in parsed.text  # shown, as text
    assert "train_loss" in parsed.text and "norms" in parsed.text and "complete" in parsed.text
    assert "0.01" in parsed.text
