"""Checkpoints written off the training thread (issue "Speed where users feel it").

`CheckpointWriter` takes a snapshot on the training thread and leaves serialisation,
hashing and the fsynced atomic writes (`qnnc.runtime.checkpoint.save_checkpoint`) to a
background thread (or, opt-in, a forked process). A crash at any point leaves every
earlier checkpoint valid."""

from __future__ import annotations

import math
import os
import sys
import threading
from typing import Optional

import numpy as np

from qnnc.runtime import checkpoint as ckpt


class CheckpointWriter:
    """Writes checkpoints in the background, in submission order.

    `submit` returns at once unless `depth` writes are already waiting (then it waits:
    memory stays bounded). Each write is `checkpoint.save_checkpoint`: serialisation,
    hash, an atomic write of the weights (temporary file, fsync, rename), then of the
    sidecar. A crash at any point leaves every earlier checkpoint as it was, and the one
    being written either whole or absent (`list_checkpoints` ignores weights without
    their sidecar). An error in a write is raised on the training thread by the next
    `submit`, by `flush` or by `close`, which wait for every pending write.

    By default a thread of this process does the writes, and `submit` must be given
    copies. With `process=True` (or QNNC_CHECKPOINT_PROCESS=1; Linux only) they run in a
    child process forked when the writer is made: serialisation holds the GIL for
    milliseconds per megabyte, which in a thread stalls the training steps it overlaps.
    `submit` then copies the snapshot into one of `depth` slots of a shared memory arena
    (torch copies, which release the GIL) and sends the child only names, shapes and
    offsets; the child calls the same `save_checkpoint` on arrays that view the slot. A
    snapshot larger than a slot goes through the pipe instead. Measured on the 2-core
    machine (benchmarks/bench_train_ckpt.py, BENCHMARKS.md) the fork, the copies and the
    child's scheduling cost more than the GIL stalls they save, so the thread is the
    default."""

    def __init__(self, run_dir, depth: int = 3, save=None, process: Optional[bool] = None,
                 slot_bytes: int = 0):
        import multiprocessing as mp
        import queue

        self.run_dir = run_dir
        self._depth = depth
        self._error: Optional[BaseException] = None
        self._reported = False
        self._closed = False
        self._pending: list[int] = []  # slots (or -1: sent through the pipe) in flight, oldest first
        if process is None:
            process = save is None and bool(os.environ.get("QNNC_CHECKPOINT_PROCESS"))
        process = process and sys.platform.startswith("linux") and "fork" in mp.get_all_start_methods()
        self._process = None
        self.copies_snapshot = bool(process)  # submit copies the tensors itself
        if process:
            import mmap

            self._slot_bytes = -(-int(slot_bytes) // 4096) * 4096
            self._arena = mmap.mmap(-1, max(1, self._slot_bytes * depth)) if self._slot_bytes else None
            ctx = mp.get_context("fork")
            self._jobs = ctx.SimpleQueue()
            self._results = ctx.SimpleQueue()
            self._process = ctx.Process(target=_writer_process, args=(self._jobs, self._results, self._arena,
                                                                     os.getpid()),
                                        name="qnnc-checkpoint-writer", daemon=True)
            self._process.start()
        else:
            self._save = save or ckpt.save_checkpoint
            self._queue: "queue.Queue" = queue.Queue(maxsize=depth)
            self._thread = threading.Thread(target=self._run, name="qnnc-checkpoint-writer", daemon=True)
            self._thread.start()

    # ---- thread mode

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            try:
                if job is None:
                    return
                if self._error is None:  # after a failure, later checkpoints are not written
                    self._save(self.run_dir, *job)
            except BaseException as e:  # handed to the training thread
                self._error = e
            finally:
                self._queue.task_done()

    # ---- process mode

    def _collect_one(self) -> None:
        """Wait for the oldest write in flight to finish."""
        try:
            if not self._process.is_alive() and self._results.empty():
                raise EOFError("it exited")
            result = self._results.get()
        except (EOFError, OSError) as e:  # the writer died
            self._error = self._error or OSError(f"the checkpoint writer process stopped: {e}")
            self._pending.clear()
            return
        self._pending.pop(0)
        if result is not None and self._error is None:
            self._error = _rebuild_error(result)

    def _drain_ready(self) -> None:
        while self._pending and not self._results.empty():
            self._collect_one()

    def _wait_all(self) -> None:
        if self._process is None:
            self._queue.join()
            return
        while self._pending:
            self._collect_one()

    def _pack(self, tensors: dict, extra: dict):
        """Copy the snapshot into a free slot of the arena: (slot, layout), or None when it
        does not fit (then it is sent as arrays)."""
        items = list(tensors.items()) + list(extra.items())
        offsets, off = [], 0
        for _, t in items:
            off = -(-off // 64) * 64
            offsets.append(off)
            off += t.numel() * t.element_size() if hasattr(t, "element_size") else np.asarray(t).nbytes
        if self._arena is None or off > self._slot_bytes:
            return None
        busy = set(self._pending)
        slot = next(i for i in range(self._depth) if i not in busy)
        import torch

        base = slot * self._slot_bytes
        layout = []
        for (name, t), o in zip(items, offsets):
            t = torch.as_tensor(t).detach()
            # (the numpy dtype from an empty host tensor: `t` may live on another device)
            arr = np.frombuffer(self._arena, dtype=torch.empty(0, dtype=t.dtype).numpy().dtype,
                                count=t.numel(), offset=base + o)
            torch.from_numpy(arr).copy_(t.reshape(-1))  # torch's copy releases the GIL (and copies from a device)
            layout.append((name, arr.dtype.str, tuple(t.shape), base + o, name in tensors))
        return slot, layout

    # ---- both

    def _raise(self) -> None:
        if self._error is not None and not self._reported:
            self._reported = True
            raise self._error

    def submit(self, step: int, tensors: dict, meta: dict, extra: Optional[dict] = None) -> None:
        """Queue checkpoint `step`. In process mode the tensors are copied before this
        returns (the caller may go on changing them); in thread mode they must be copies."""
        if self._process is not None:
            self._drain_ready()
            while len(self._pending) >= self._depth and self._error is None:
                self._collect_one()
        self._raise()
        if self._error is not None:
            return
        if self._process is None:
            self._queue.put((step, tensors, meta, extra))
            return
        packed = self._pack(tensors, extra or {})
        if packed is None:
            arrays = {k: np.array(_to_numpy(v)) for k, v in tensors.items()}
            more = {k: np.array(_to_numpy(v)) for k, v in (extra or {}).items()}
            self._pending.append(-1)
            self._jobs.put(("arrays", str(self.run_dir), step, arrays, dict(meta), more))
        else:
            slot, layout = packed
            self._pending.append(slot)
            self._jobs.put(("slot", str(self.run_dir), step, layout, dict(meta), None))

    def flush(self) -> None:
        """Wait until every submitted checkpoint is on disk; raise a write's error."""
        self._wait_all()
        self._raise()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._wait_all()
            if self._process is None:
                self._queue.put(None)
                self._thread.join()
            else:
                try:
                    self._jobs.put(None)
                except OSError:
                    pass
                self._process.join()
        self._raise()


def _to_numpy(t):
    return t.detach().cpu().numpy() if hasattr(t, "detach") else np.asarray(t)


def _writer_process(jobs, results, arena, parent: int) -> None:
    """The checkpoint writer's loop in its own (forked) process: one `save_checkpoint`
    per job, in order; each result is None or the error, in a form that pickles. It
    ends on None, or when the trainer is gone (killed: the queue's other end is ours
    too, so no end-of-file would tell)."""
    import select
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the trainer, which closes us
    reader = jobs._reader
    failed = False
    while True:
        while not select.select([reader], [], [], 1.0)[0]:
            if os.getppid() != parent:
                return
        try:
            job = jobs.get()
        except (EOFError, OSError):
            return
        if job is None:
            return
        kind, run_dir, step, payload, meta, extra = job
        if failed:
            results.put(None)
            continue
        try:
            if kind == "slot":
                tensors, extra = {}, {}
                for name, dtype, shape, offset, is_tensor in payload:
                    arr = np.frombuffer(arena, dtype=np.dtype(dtype), count=math.prod(shape) if shape else 1,
                                        offset=offset).reshape(shape)
                    (tensors if is_tensor else extra)[name] = arr
                ckpt.save_checkpoint(run_dir, step, tensors, meta, extra)
            else:
                ckpt.save_checkpoint(run_dir, step, payload, meta, extra)
            results.put(None)
        except BaseException as e:  # noqa: BLE001 - every failure goes back to the trainer
            failed = True
            results.put(_portable_error(e))


def _portable_error(e: BaseException):
    from qnnc.compiler.diagnostics import QnncError

    if isinstance(e, QnncError):
        return ("qnnc", list(e.diagnostics), e.exit_code)
    if isinstance(e, OSError):
        return ("os", e.errno, e.strerror, e.filename)
    return ("other", f"{type(e).__name__}: {e}")


def _rebuild_error(r) -> BaseException:
    from qnnc.compiler.diagnostics import QnncError

    if r[0] == "qnnc":
        return QnncError(r[1], r[2])
    if r[0] == "os":
        return OSError(r[1], r[2], r[3]) if r[3] is not None else OSError(r[1], r[2])
    return RuntimeError(f"writing a checkpoint failed: {r[1]}")
