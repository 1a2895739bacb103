"""The Dask client that sweeps and batch analyses run their tasks on.

By default an embedded `LocalCluster`: one single-threaded worker process per core (at most
one per task), listening on 127.0.0.1 only and without a dashboard; `scheduler="tcp://host:port"`
sends the tasks to an existing Dask cluster instead, through the same code path.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

__all__ = ["dask_client"]


@contextlib.contextmanager
def dask_client(scheduler: str | None = None, workers: int | None = None,
                tasks: int | None = None) -> Iterator[Any]:
    """A `dask.distributed.Client`: of the cluster at `scheduler`, else of a local cluster of
    `workers` processes (default: the cores, never more than `tasks`); closed on exit."""
    from dask.distributed import Client, LocalCluster

    cluster = None
    if scheduler:
        client = Client(scheduler, timeout="30s")
    else:
        n = workers or os.cpu_count() or 1
        if tasks is not None:
            n = min(n, max(1, tasks))
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                               dashboard_address=None, host="127.0.0.1")
        client = Client(cluster)
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
