"""Unit tests of the analysis math: Fourier shares, coarseness, spectra, trajectory, CUSUM, losses."""

from __future__ import annotations

import math
import platform
import resource

import numpy as np
import pytest
import torch
from test_analysis_support import train_bundle

from epochscope.collectors.analysis import coarseness as co
from epochscope.collectors.analysis import fourier as fo
from epochscope.collectors.analysis import (
    map_coarseness,
    page_cusum,
    self_intersections,
    shared_pca_basis,
)
from epochscope.collectors.analysis.base import EpochData, Probe
from epochscope.collectors.analysis.loss import (
    RestrictedLoss,
    cross_entropy,
    per_example_ce,
    sum_directions,
)
from epochscope.collectors.analysis.memory import reuse_freed_memory
from epochscope.collectors.analysis.trajectory import (
    RowStore,
    loop_measures,
    pca_from_rows,
    turn_angles,
)
from epochscope.collectors.analysis.weights import matrix_view, singular_values, spectrum_metrics

P = 17


def _wave(k: int, *, on: str = "a", phase: float = 0.0) -> torch.Tensor:
    x = torch.arange(P, dtype=torch.float64)
    w = torch.cos(2 * np.pi * k * x / P + phase)
    if on == "a":
        return w[:, None].expand(P, P).clone()
    if on == "b":
        return w[None, :].expand(P, P).clone()
    return torch.cos(2 * np.pi * k * (x[:, None] + x[None, :]) / P + phase)


def test_fourier_basis_is_orthonormal_and_even_p_works():
    for p in (17, 16):
        F = fo.fourier_basis(p)
        assert np.allclose(F @ F.T, np.eye(p), atol=1e-12)


def test_frequency_fractions_of_pure_waves():
    maps = torch.stack(
        [_wave(3), _wave(5, on="b", phase=0.7), _wave(2, on="sum") + 4.0, torch.full((P, P), 3.0)]
    )
    frac = fo.freq_fractions(maps, P)
    assert frac.shape == (4, P // 2)
    assert frac[0, 2] == pytest.approx(1.0) and frac[1, 4] == pytest.approx(1.0)
    assert frac[2, 1] == pytest.approx(1.0)  # a constant offset is not variance
    assert np.all(frac[3] == 0)  # a constant map has nothing to explain
    mixed = fo.freq_fractions((_wave(1) + 0.5 * _wave(4, on="b"))[None], P)[0]
    assert mixed[0] == pytest.approx(0.8) and mixed[3] == pytest.approx(0.2)


@pytest.mark.parametrize("p", [17, 16])
def test_diagonal_sums_give_the_full_transforms_energies(p):
    """The O(p^2) path (row/column sums, wrapped diagonals) equals the full 2-D transform,
    for odd p and for even p (whose Nyquist frequency has a cos component only)."""
    torch.manual_seed(1)
    maps = torch.randn(5, p, p, dtype=torch.float64)
    a = torch.arange(p, dtype=torch.float64)
    maps[1] = torch.cos(2 * torch.pi * 3 * (a[:, None] + a[None, :]) / p) + 0.2 * maps[1]
    maps[2] = torch.cos(torch.pi * (a[:, None] - a[None, :]))  # the Nyquist (k = p/2) pattern
    maps[3] = 50.0 + 1e-3 * maps[3]  # offset far larger than the variation
    grid = maps.permute(1, 2, 0).contiguous().to(torch.float32)
    flat = grid.reshape(p * p, -1)
    full = fo.class_energy(fo.grid_fourier(grid.double(), p).float(), p)
    k = torch.arange(1, p // 2 + 1)
    centred, mean, var = fo.centre(flat)
    fast = fo.frequency_energy(centred, p)
    scale = full.sum(dim=(0, 1)) - full[0, 0]
    for i, ref in enumerate((full[0, k], full[k, 0], full[k, k])):
        assert torch.allclose(fast[i] / scale, ref / scale, atol=1e-5)
    assert torch.allclose(var, maps.var(dim=(1, 2), unbiased=False), rtol=1e-5)
    assert torch.allclose(mean, maps.mean(dim=(1, 2)), rtol=1e-6)
    frac = fo.frequency_fractions(fast, var, mean, p)
    plain = [0, 1, 2, 4]
    assert np.allclose(frac[plain], fo.freq_fractions(maps[plain], p), atol=1e-5)
    # shares do not depend on the offset: the offset map's equal those of its variation alone
    assert np.allclose(frac[3], fo.freq_fractions(maps[3:4] - 50.0, p)[0], atol=1e-4)
    if p % 2 == 0:
        assert frac[2, -1] == pytest.approx(1.0)
    low = fo.low_class_energy(centred.view(p, p, -1), p, 3)
    low[0, 0] = full[0, 0]  # the centred maps' mean is zero
    assert torch.allclose(low / scale, full[:4, :4] / scale, atol=1e-5)


def test_gini_and_key_mask():
    assert fo.gini(np.ones(10)) == pytest.approx(0.0)
    assert fo.gini(np.r_[np.zeros(9), 1.0]) == pytest.approx(0.9)
    norms = np.r_[np.ones(20), 10.0, 8.0]
    mask = fo.key_mask(norms, factor=3.0, max_key=10)
    assert mask.nonzero()[0].tolist() == [20, 21]


def test_fourier_norms_cos_sin_balance():
    x = np.arange(P)
    W = np.stack([np.cos(2 * np.pi * 3 * x / P), 0.25 * np.sin(2 * np.pi * 3 * x / P)], axis=1)
    norms = fo.freq_norms(fo.fourier_transform(W, P))
    assert np.argmax(norms["freq"]) == 2
    assert norms["cos"][2] / norms["sin"][2] == pytest.approx(4.0)


def test_coarseness_fast_paths_equal_the_definitions():
    torch.manual_seed(0)
    maps = torch.randn(6, P, P, dtype=torch.float64)
    maps[1] = _wave(1) + 0.1 * maps[1]
    maps[2] = _wave(7, on="sum")
    maps[3] = 1e3 + 1e-2 * maps[3]  # a large offset: the variance must survive it
    maps = maps.to(torch.float32).to(torch.float64)  # the same values as the float32 grid
    grid = maps.permute(1, 2, 0).contiguous().to(torch.float32)
    for r in (0.125, 0.3, 0.9):
        assert np.allclose(co.fft_low_grid(grid, P, r), co.fft_low_ratio(maps, r), atol=1e-4)
    assert np.allclose(co.variance_kept_grid(grid, 5), co.variance_kept(maps, 5), atol=1e-5)
    assert np.allclose(co.gradient_grid(grid), co.gradient_magnitude(maps), atol=1e-5)


def test_coarseness_orders_smooth_and_rough_maps():
    smooth = map_coarseness(_wave(1).numpy())
    rough = map_coarseness(_wave(8, on="sum").numpy())
    assert smooth["fft_low"] > 0.99 and rough["fft_low"] < 0.01
    assert smooth["var_kept"] > rough["var_kept"]
    assert smooth["gradient"] < rough["gradient"]
    flat = map_coarseness(np.full((9, 12), 2.0))
    assert np.isnan(flat["fft_low"]) and np.isnan(flat["var_kept"]) and flat["gradient"] == 0


def test_spectrum_metrics():
    s = np.array([[1.0, 1.0, 1.0, 1.0], [10.0, 9.0, 1.0, 0.001]])
    m = spectrum_metrics(s, top_k=2)
    assert m["participation_ratio"][0] == pytest.approx(4.0)
    assert m["effective_rank"].tolist() == [4, 3]
    assert m["spectral_gap"][1] == pytest.approx(9.5 / 0.5005)
    assert m["max_gap_index"][1] == 2 and m["max_gap_ratio"][1] == pytest.approx(9.0)
    rng = np.random.default_rng(0)
    A = rng.standard_normal((3, 20, 7))
    assert np.allclose(singular_values(A), np.linalg.svd(A, compute_uv=False), atol=1e-9)
    wq = rng.standard_normal((4, 16, 8))  # heads combined: d_model x (heads * d_head)
    assert matrix_view("W_Q", wq).shape == (16, 32) and matrix_view("W_O", wq).shape == (64, 8)


def test_self_intersections():
    t = np.linspace(0, 2 * np.pi, 60) + 0.037  # no vertex exactly on the crossing
    eight = np.c_[np.sin(t), np.sin(t) * np.cos(t)]  # crosses itself at the origin
    hits = self_intersections(eight)
    assert len(hits) == 1 and abs(hits[0][2]) < 0.05 and abs(hits[0][3]) < 0.05
    spiral = np.c_[t * np.cos(t), t * np.sin(t)]
    assert self_intersections(spiral) == []
    loop = np.c_[np.cos(t * 1.2), np.sin(t * 1.2)]  # more than one turn: closes and crosses
    assert len(self_intersections(loop)) >= 1


def test_loop_measures():
    t = np.linspace(-1.5, 1.5, 600)
    looped = np.stack([t**2 - 1, t**3 - t], 1)  # crosses itself at t = -1, 1; that loop's area is 8/15
    length = np.sqrt((np.diff(looped, axis=0) ** 2).sum(1)).sum()
    m = loop_measures(looped)
    assert m["crossings"] == 1 and m["loop_area"] == pytest.approx(8 / 15 / length**2, rel=0.01)
    assert m["path_length"] == pytest.approx(length)
    # a unit circle with a short tail in and out that cross once: the loop is the circle (area pi)
    s = np.linspace(0, 2 * np.pi - 0.05, 2000)
    circle = np.vstack([[1.0, -0.1], np.c_[np.cos(s), np.sin(s)], [1.05, 0.05]])
    m = loop_measures(circle)
    assert m["crossings"] == 1 and m["loop_area"] == pytest.approx(math.pi / m["path_length"] ** 2, rel=0.01)
    assert m["path_length"] == pytest.approx(2 * math.pi + 0.16, abs=0.02)
    s = np.linspace(0, 2 * np.pi, 400)
    arch = np.stack([np.sin(np.pi * s / 6.5), -s], 1)
    m = loop_measures(arch)
    assert m["crossings"] == 0 and m["loop_area"] == 0.0 and 0 < m["excursion"] <= 1
    # scale-, rotation- and translation-free
    rot = np.array([[0.6, -0.8], [0.8, 0.6]])
    assert loop_measures(7 * looped @ rot + 3)["loop_area"] == pytest.approx(loop_measures(looped)["loop_area"])
    # no length: no area, no excursion (None, stored as JSON null)
    assert loop_measures(np.ones((5, 2))) == {"crossings": 0, "loop_area": None, "excursion": None,
                                              "path_length": 0.0}


def test_trajectory_pca_velocity_curvature():
    rows = np.zeros((5, 3), dtype=np.float32)
    rows[:, 0] = [0, 1, 2, 2, 2]
    rows[:, 1] = [0, 0, 0, 1, 2]
    angle, steps = turn_angles(rows)
    assert np.isnan(angle[0]) and np.isnan(angle[-1])
    assert angle[1] == pytest.approx(0.0) and angle[2] == pytest.approx(np.pi / 2)
    assert steps[1:].tolist() == [1, 1, 1, 1]
    pca = pca_from_rows(rows, 3)
    assert pca.explained_ratio[:2].sum() == pytest.approx(1.0)
    assert pca.coords[-1, 0] > pca.coords[0, 0]  # oriented along the run


def test_row_store_sketch_preserves_geometry():
    rng = np.random.default_rng(1)
    rows = np.cumsum(rng.standard_normal((12, 50_000)), axis=0).astype(np.float32)
    store = RowStore(rows.shape[1], len(rows), max_bytes=1, sketch_dim=4096)
    assert store.approximate
    for i, r in enumerate(rows):
        store.add(i, r)
    _, sketched = store.matrix()
    exact = pca_from_rows(rows, 2).explained_ratio[:2]
    approx = pca_from_rows(sketched, 2).explained_ratio[:2]
    assert np.allclose(exact, approx, atol=0.05)


def test_page_cusum_marks_known_changes_not_noise_or_drift():
    rng = np.random.default_rng(0)
    n = 3000
    noise = rng.standard_normal(n)
    assert page_cusum(noise).alarms == []  # stationary
    t = np.arange(n, dtype=float)
    assert page_cusum(noise + 20 * t / n).alarms == []  # slow drift is trend, not change
    assert page_cusum(noise + 40 * np.exp(-t / 500)).alarms == []  # a smooth decay neither
    heavy = rng.standard_t(3, n)
    heavy[::97] += 50.0  # isolated wild points: clipped, no alarm
    assert len(page_cusum(heavy).alarms) <= 1
    # level shifts of 6 sigma at 1000 (up) and 2000 (down) on a drifting series: two alarms
    x = noise + 20 * t / n + 6.0 * ((t >= 1000) & (t < 2000))
    res = page_cusum(x)
    assert [(a.direction, a.index // 10) for a in res.alarms] == [("up", 100), ("down", 200)]
    for a, at in zip(res.alarms, (1000, 2000), strict=True):
        assert at <= a.index <= at + 6 and abs(a.onset - at) <= 6  # delay, change point
        assert 3.0 <= abs(a.size) <= 8.0  # size in the series units (diluted by an early onset)
    assert res.sigma == pytest.approx(1.0, rel=0.2)
    # a spike: one alarm up at its start
    spike = noise.copy()
    spike[1500:1510] += 10
    ups = [a for a in page_cusum(spike).alarms if a.direction == "up"]
    assert len(ups) == 1 and 1500 <= ups[0].index <= 1503
    # min_shift drops changes too small to matter; min_sigma floors a noiseless series
    assert page_cusum(x, min_shift=10.0).alarms == []
    smooth = np.r_[np.zeros(200), np.full(200, 0.01)]
    assert page_cusum(smooth, min_sigma=0.05).alarms == []
    assert page_cusum(smooth).alarms  # without the floor, a 1% step in a noiseless series alarms
    assert np.isnan(page_cusum(np.r_[np.ones(20), np.nan, np.ones(20)]).pos[20])


def test_cusum_analyzer_alarms_with_monitor_direction_size():
    from epochscope.collectors.analysis.base import MetricsView
    from epochscope.collectors.analysis.cusum import Cusum

    rng = np.random.default_rng(1)
    e = np.arange(1, 6001)
    grad = 10 ** (0.3 * e / 6000 + 0.02 * rng.standard_normal(len(e)) + 1.0 * (e >= 4000))
    tps = 1000 * 10 ** (0.03 * rng.standard_normal(len(e)) - 0.7 * ((e >= 2000) & (e < 2600)))
    out = Cusum().compute_metrics(MetricsView({"grad_norm": (e, grad), "examples_per_sec": (e, tps)}))
    alarms = [(ev["payload"]["monitor"], ev["payload"]["direction"], ev["epoch"] // 100) for ev in out.events]
    assert alarms == [("tps", "down", 20), ("tps", "up", 26), ("grad", "up", 40)]
    grad_alarm = out.events[-1]["payload"]
    assert grad_alarm["size"] == pytest.approx(1.0, abs=0.25) and grad_alarm["size_units"] == "decades"
    assert out.scalars["n_alarms"] == 3 and len(out.epochs) <= 300 * 2


def test_cross_entropy_is_precise_for_tiny_losses():
    torch.manual_seed(0)
    x = torch.randn(200, 13) * 5
    y = torch.randint(0, 13, (200,))
    x[torch.arange(200), y] += 40  # confidently right: losses ~1e-17
    d = x.double() - x.double().gather(1, y[:, None])
    d.scatter_(1, y[:, None], float("-inf"))
    exact = torch.log1p(torch.exp(d).sum(1))
    assert torch.allclose(per_example_ce(x, y).double(), exact, rtol=1e-4, atol=0)
    z = torch.randn(50, 13)
    z[0, (y[0] + 1) % 13] += 200  # confidently wrong: the overflow path
    ref = -z.double().log_softmax(-1).gather(1, y[:50, None])[:, 0]
    assert torch.allclose(per_example_ce(z, y[:50]).double(), ref, rtol=1e-5)


def test_restricted_and_excluded_loss_on_an_ideal_fourier_circuit():
    """MLP features = cos/sin(w(a+b)) of two key frequencies; logits = sum cos(w(a+b-c))."""
    p, keys = 13, [2, 5]
    a = torch.arange(p).repeat_interleave(p)
    b = torch.arange(p).repeat(p)
    feats, w_u = [], []
    c = torch.arange(p, dtype=torch.float64)
    for k in keys:
        ang = 2 * np.pi * k * (a + b).double() / p
        feats += [torch.cos(ang), torch.sin(ang)]
        w_u += [torch.cos(2 * np.pi * k * c / p), torch.sin(2 * np.pi * k * c / p)]
    acts = torch.stack(feats, 1) * 6.0  # [p*p, 4]: d_mlp = 4
    W_out = torch.eye(4, dtype=torch.float64)  # d_model = 4
    W_U = torch.stack(w_u)  # [4, p]
    noise = 0.3 * torch.cos(2 * np.pi * 3 * (a + 2 * b).double() / p)[:, None]  # non-key junk
    logits = (acts + noise) @ W_out @ W_U
    probe = Probe(
        p=p,
        tokens=torch.zeros(p * p, 3, dtype=torch.long),
        labels=(a + b) % p,
        train_idx=np.arange(0, p * p, 3),
    )
    d = EpochData(
        0,
        {"W_out": W_out.float().numpy(), "W_U": W_U.float().numpy()},
        cache={"logits": logits.float(), "mlp_post": (acts + noise).float()},
        probe=probe,
    )
    an = RestrictedLoss()
    an.p = p

    class Ref:
        epoch, key_freqs, key_source = 0, keys, "test"

    from epochscope.collectors.analysis.base import RunInfo

    an.prepare(
        RunInfo(None, {"p": p}, {"W_E": (p + 1, 4), "W_U": (4, p), "W_out": (4, 4)}, [], [0]),
        None,
        lambda: Ref,
    )
    out = an.compute([d])
    full = cross_entropy(logits.float(), probe.labels)
    assert out["restricted_loss"][0] < full < 0.05  # the key frequencies alone suffice
    assert out["excluded_loss"][0] > 2.0  # without them the answer is gone (ln 13 = 2.56)
    assert out["excluded_loss_per_freq"].shape == (1, 2)
    assert np.all(out["excluded_loss_per_freq"][0] > full)
    assert sum_directions(p, keys).shape == (p * p, 4)


def test_shared_pca_basis(tmp_path):
    one = train_bundle(tmp_path / "one.h5", epochs=30, seed=0)
    two = train_bundle(tmp_path / "two.h5", epochs=30, seed=1)
    shared = shared_pca_basis([one, two], n_components=3)
    assert shared.components.shape[0] == 3
    assert np.allclose(shared.components @ shared.components.T, np.eye(3), atol=1e-4)
    assert set(shared.runs) == {"tiny", "tiny-2"}
    epochs, coords = shared.runs["tiny"]
    assert epochs.tolist() == [0, 10, 20, 30] and coords.shape == (4, 3)
    from epochscope.archives import open_bundle
    from epochscope.collectors.analysis.checkpoint_io import read_weights

    with open_bundle(one) as b:
        assert np.allclose(shared.project(read_weights(b, 20)), coords[2], atol=1e-4)
    assert isinstance(shared.self_intersections("tiny-2"), list)


@pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only"
)
def test_reuse_freed_memory_stops_fresh_pages_per_allocation():
    """Inside the block a freed 48 MB tensor's pages are reused (few minor page faults);
    outside, each new one is mapped afresh from the kernel (glibc maps blocks above 32 MB
    freshly however the dynamic threshold has moved: thousands of faults each)."""

    def faults(rounds: int = 8) -> int:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(rounds):
            torch.ones(12 * 1024 * 1024)  # 48 MB, written: every page touched, then freed
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

    def rss() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * resource.getpagesize()

    pages = 8 * 48 * 1024 * 1024 // 4096
    plain = faults()
    with reuse_freed_memory():
        faults(1)  # the first block is fresh
        kept = faults()
        torch.ones(64 * 1024 * 1024)  # 256 MB, freed at once but kept for reuse
        held = rss()
    released = rss()
    assert kept <= pages // 4 < pages // 2 < plain, (kept, plain)  # at most 2 of 8 fresh
    # on leaving, the kept memory goes back to the kernel (malloc_trim)
    assert held - released > 200 * 1024 * 1024, (held, released)
