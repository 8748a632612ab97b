"""Where the runs of a sweep execute: in this process, on a local process pool or on a Dask cluster.

Every executor calls ``run(spec, job)`` for each spec still to do and hands each outcome to the
sweep's ledger (:mod:`pa_ci.experiment.ledger`: ``ledger.finished(spec, result)`` or
``ledger.error(spec, exc)``) in the main process, as the runs finish; a run that raises is
recorded and the others go on.

* in-process (``workers=1``): :func:`_run_here`;
* a local process pool (``workers>1``): :func:`_run_pool`, "spawn" start method (forking a process
  that has Numba's threading layer running is unsafe; a script that calls
  :func:`~pa_ci.experiment.sweep.run_sweep` with workers must guard its entry point with
  ``if __name__ == "__main__":``), each worker with ``NUMBA_NUM_THREADS = cores // workers``;
* a Dask cluster (``scheduler="tcp://host:port"``, the optional ``dist`` extra; the workers need
  pa-ci installed): :func:`_run_dask`.

Ctrl-C (or an error in the main process) cancels the pending runs and stops the ones in flight.
"""
from __future__ import annotations

import concurrent.futures as cf
import contextlib
import multiprocessing
import os
import uuid
from typing import Any, Callable, Iterator

from ..errors import ParameterError, TrainingError
from .ledger import _Ledger, _one_line

#: ``runner(spec, job) -> dict``: one run of a sweep (default :func:`pa_ci.experiment.protocol.run_one`).
Runner = Callable[[Any, Any], dict]
#: Seconds to wait for a Dask scheduler before giving up (Dask's default is 30).
DASK_CONNECT_TIMEOUT = 10


# ----------------------------------------------------------------------------- in this process
def _run_here(todo: list[Any], job: Any, run: Runner, ledger: _Ledger) -> None:
    """Run ``todo`` one after the other in this process."""
    for spec in todo:
        try:
            result = run(spec, job)
        except Exception as exc:  # noqa: BLE001 - recorded, the sweep goes on
            ledger.error(spec, exc)
        else:
            ledger.finished(spec, result)


# ----------------------------------------------------------------------------- a process pool
def _available_cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _pool_worker_init(threads: int) -> None:
    """In each pool process: cap Numba's thread pool (the env var covers a fresh import)."""
    os.environ["NUMBA_NUM_THREADS"] = str(threads)
    with contextlib.suppress(Exception):
        import numba
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))


@contextlib.contextmanager
def _environ(name: str, value: str) -> Iterator[None]:
    """The environment variable ``name`` set to ``value`` for the ``with`` block."""
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


def _run_pool(todo: list[Any], job: Any, run: Runner, workers: int, ledger: _Ledger) -> None:
    """Run ``todo`` on ``workers`` spawned processes (see the module docstring)."""
    threads = max(1, _available_cores() // workers)
    with contextlib.suppress(ValueError):
        threads = min(threads, int(os.environ.get("NUMBA_NUM_THREADS", threads)))
    ctx = multiprocessing.get_context("spawn")
    with _environ("NUMBA_NUM_THREADS", str(threads)):
        pool = cf.ProcessPoolExecutor(max_workers=workers, mp_context=ctx,
                                      initializer=_pool_worker_init, initargs=(threads,))
        try:
            futures = {pool.submit(run, spec, job): spec for spec in todo}
            for future in cf.as_completed(futures):
                spec = futures[future]
                exc = future.exception()
                if exc is not None:
                    ledger.error(spec, exc)
                else:
                    ledger.finished(spec, future.result())
        except BaseException:
            # Ctrl-C (or an error in this process): drop the pending runs and stop the ones in
            # flight, whose results would be lost anyway, instead of letting them burn CPU.
            processes = dict(getattr(pool, "_processes", None) or {})
            pool.shutdown(wait=False, cancel_futures=True)
            for process in processes.values():
                with contextlib.suppress(Exception):
                    process.terminate()
            raise
        pool.shutdown(wait=True)


# ----------------------------------------------------------------------------- Dask
def parse_scheduler(address: str) -> str:
    """A Dask scheduler address ``tcp://HOST:PORT`` (or ``HOST:PORT``), checked without
    connecting: ParameterError naming what is wrong otherwise."""
    expected = "expected tcp://HOST:PORT, e.g. tcp://127.0.0.1:8786"
    text = str(address).strip()
    rest = text.split("://", 1)[1] if "://" in text else text
    if "://" in text and not text.startswith(("tcp://", "tls://", "inproc://", "ucx://")):
        raise ParameterError(f"scheduler {address!r}: unknown protocol; {expected}")
    host, sep, port = rest.rpartition(":")
    if not sep or not host:
        raise ParameterError(f"scheduler {address!r}: no port; {expected}")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ParameterError(f"scheduler {address!r}: port {port!r} is not a number in 1..65535; "
                             f"{expected}")
    return text


def _dask() -> tuple[Any, Any]:
    """Dask's ``Client`` and ``as_completed``; ParameterError without the ``dist`` extra."""
    try:
        from dask.distributed import Client, as_completed
    except ImportError:
        raise ParameterError("a Dask scheduler needs the 'dist' extra: "
                             "pip install 'pa-ci[dist]'") from None
    return Client, as_completed


def _connect(scheduler: str, Client: Any) -> Any:  # noqa: N803 - the Dask name
    """A client of ``scheduler``, connected before the sweep folder is touched."""
    try:
        return Client(scheduler, timeout=DASK_CONNECT_TIMEOUT)
    except (OSError, TimeoutError, ValueError) as exc:
        raise TrainingError(f"cannot reach the Dask scheduler {scheduler}: {_one_line(exc)}") from None


def _run_dask(todo: list[Any], job: Any, run: Runner, client: Any, ledger: _Ledger,
              as_completed: Any) -> None:
    """Submit ``todo`` to the Dask scheduler of ``client`` and record the runs as they finish."""
    if not todo:
        return
    tag = uuid.uuid4().hex[:8]  # keys must be unique on a shared scheduler
    futures: dict[Any, Any] = {}
    try:
        for spec in todo:
            future = client.submit(run, spec, job, pure=False, key=f"pa-ci-{spec.key()}-{tag}")
            futures[future] = spec
        for future in as_completed(list(futures)):
            spec = futures[future]
            if future.status == "error":
                ledger.error(spec, future.exception())
            elif future.status == "cancelled":
                ledger.error(spec, RuntimeError("cancelled by the Dask scheduler"))
            else:
                try:
                    result = future.result()
                except Exception as exc:  # noqa: BLE001 - e.g. lost worker
                    ledger.error(spec, exc)
                else:
                    ledger.finished(spec, result)
    except BaseException:
        with contextlib.suppress(Exception):
            client.cancel(list(futures))
        raise
