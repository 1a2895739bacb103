"""Writes tests/data/bundle-<FORMAT_VERSION>.bundle: a small bundle kept in git forever.

Run only when a new format version is released (with a new file name); never regenerate an
old golden file — tests/test_compat.py must keep reading the bytes the old writer produced.
"""

from pathlib import Path

import numpy as np

from epochscope.archives import FORMAT_VERSION, ArtifactUpdate, BundleWriter, Segment

OUT = Path(__file__).with_name(f"bundle-{FORMAT_VERSION}.bundle")

if __name__ == "__main__":
    with BundleWriter(OUT, create=True, overwrite=True) as w:
        w.write(Segment(
            context={"config": {"name": f"golden-{FORMAT_VERSION}", "p": 5, "lr": 0.001},
                     "seeds": {"data_seed": 1, "model_seed": 2},
                     "environment": {"python": "3.11.7", "torch": "2.13.0+cpu"}},
            session={"id": "golden", "started": "2026-11-21T00:00:00+00:00", "status": "running"},
            metrics={"train_loss": (np.arange(5), np.linspace(2.0, 0.1, 5)),
                     "test_acc": (np.arange(0, 5, 2), np.array([0.1, 0.5, 0.99]))},
            events=[{"epoch": 2, "kind": "turn", "message": "test loss starts falling",
                     "payload": {"confidence": 0.9}}],
            checkpoints={4: ({"model_class": "x:Y", "model_config": {"d": 2}, "tensor_dtypes": {}},
                             {"model": {"W": np.arange(4, dtype=np.float32).reshape(2, 2)},
                              "optimizer": {"state": {"0": {"step": np.array(4.0, dtype=np.float32)}},
                                            "param_groups": [{"lr": 0.001, "betas": [0.9, 0.98]}]},
                              # Since 1.1: non-array leaves below the top level, an empty mapping.
                              "rng": {"numpy": {"kind": "MT19937", "keys": np.arange(3, dtype=np.uint32),
                                                "pos": 3}},
                              "empty": {}})},
            artifacts={"norms": ArtifactUpdate(version="1", epochs=np.array([4]),
                                               per_epoch={"W": np.array([[3.74]])},
                                               summary={"sel": np.array([0, 1])},
                                               scalars={"max": 3.74})},
            tables={"candidates": {"id": np.array(["a", "b"]), "fitness": np.array([0.5, 0.25])}},
        ))
        # Since 1.2: a per-step series, rows appended to a table, a top-k checkpoint policy
        # that evicted a checkpoint, a Recorder.array artifact, the dataset split and metric
        # metadata (and a sha256 on every dataset of every segment).
        w.write(Segment(
            split={"n": 6, "subsets": {"train": np.array([0, 2, 5]), "test": np.array([1, 3, 4])},
                   "meta": {"dataset": "golden"}},
            metric_info={"train_loss": {"direction": "min", "unit": "nats"}},
            metrics={"loss_step": (np.array([1, 1, 2]), np.array([0.5, 0.4, 0.3]))},
            metric_steps={"loss_step": np.array([0, 1, 0])},
            table_rows={"candidates": {"id": np.array(["c"]), "fitness": np.array([0.75])}},
            checkpoints={5: ({"model_class": "x:Y", "model_config": {"d": 2}, "tensor_dtypes": {}},
                             {"model": {"W": np.ones((2, 2), dtype=np.float32)}})},
            checkpoint_policy={"kind": "top-k", "monitor": "train_loss", "k": 1, "mode": "min"},
            tables={"best_checkpoints": {"rank": np.array([1]), "epoch": np.array([5]),
                                         "score": np.array([0.1])}},
            artifacts={"array.neuron_age": ArtifactUpdate(version="recorder-1", epochs=np.array([4]),
                                                          per_epoch={"neuron_age": np.array([[0, 3]])})},
        ))
        w.write(Segment(drop_checkpoints=[4]))
        w.write(Segment(session={"id": "golden", "ended": "2026-11-21T00:01:00+00:00",
                                 "status": "complete"}))
        w.consolidate()
    print(OUT, OUT.stat().st_size, "bytes")
