"""Worker processes for the compiled block Monte Carlo (`FixedPointBlockSampler`).

Why processes and not threads: the workers meet twice a sweep, and between meetings
each runs a torch product and a numba draw, called from Python. Threads then hand the
GIL to each other several times a sweep; on a 2-core VM a contended hand-over puts a
thread to sleep for 20-60 µs, and two threads ran a sweep no faster than one. Forked
processes have a GIL each: they share the sampler's state arrays (`shared_array`:
anonymous shared memory, made before the fork, so the children see the parent's writes
and the parent theirs), run their columns' products (torch on one thread) and draws,
and meet in shared memory (`atomic_flags.Meeting`).

A chunk is started by a command on each child's pipe; the children then run it in step
with the parent (worker 0), whose last meeting of the chunk is also theirs, so the
chunk is over for everyone when the parent's is. A child that fails writes its error
to its error pipe, then aborts the meeting; the parent raises it. A child whose parent
is gone exits. Fork is POSIX only: elsewhere the sampler runs one worker.
"""

from __future__ import annotations

import mmap
import multiprocessing
import os
import struct

import numpy as np

from qnnc.runtime.atomic_flags import Aborted, Meeting

_COMMAND = struct.Struct("<3q")  # sweeps (−1: stop), first counter, meetings so far
ERROR_BYTES = 4000


def fork_available() -> bool:
    """Whether this process may fork workers: POSIX, and not itself a daemonic
    multiprocessing worker (those may not have children, e.g. a Dask worker's)."""
    return "fork" in multiprocessing.get_all_start_methods() and not multiprocessing.current_process().daemon


def shared_array(shape, dtype) -> np.ndarray:
    """A zeroed array in anonymous shared memory (MAP_SHARED): forked children share it."""
    count = int(np.prod(shape))
    buffer = mmap.mmap(-1, max(count * np.dtype(dtype).itemsize, 1))
    return np.frombuffer(buffer, dtype=dtype, count=count).reshape(shape)


def _read_exact(fd: int, size: int):
    data = b""
    while len(data) < size:
        part = os.read(fd, size - len(data))
        if not part:
            return None
        data += part
    return data


class WorkerProcesses:
    """Workers 1..W−1 of a sampler as forked processes, W = meeting.W. `run(w, n, base,
    meetings)` runs worker w's part of a chunk (in the child) and meets the others at
    `meeting` (its flags in shared memory); `start` sends a chunk to every child."""

    def __init__(self, meeting: Meeting, run):
        self.W, self.meeting = meeting.W, meeting
        meeting.check = self._check_children
        ctx = multiprocessing.get_context("fork")
        parent = os.getpid()
        self.procs, self.commands, self.errors = [], [], []
        try:
            for w in range(1, self.W):
                command_r, command_w = os.pipe()
                error_r, error_w = os.pipe()
                proc = ctx.Process(target=_child, args=(run, w, command_r, error_w, self.meeting, parent),
                                   daemon=True, name=f"qnnc-replicas-worker-{w}")
                proc.start()
                os.close(command_r)
                os.close(error_w)
                os.set_blocking(error_r, False)
                self.procs.append(proc)
                self.commands.append(command_w)
                self.errors.append(error_r)
        except BaseException:
            self.close()
            raise

    def start(self, n: int, base: int, meetings: int) -> None:
        self._check_children()
        for fd in self.commands:
            os.write(fd, _COMMAND.pack(int(n), int(base), int(meetings)))

    def _check_children(self) -> None:
        for w, proc in enumerate(self.procs, start=1):
            if proc.exitcode is not None:
                self.meeting.abort()
                raise RuntimeError(f"block Monte Carlo worker {w} exited (code {proc.exitcode}): "
                                   f"{self.child_error() or 'no error reported'}")

    def child_error(self) -> str:
        """The first error a child reported, '' if none."""
        for w, fd in enumerate(self.errors, start=1):
            try:
                text = os.read(fd, ERROR_BYTES)
            except (BlockingIOError, OSError):
                continue
            if text:
                return f"worker {w}: " + text.decode("utf-8", "replace")
        return ""

    def close(self) -> None:
        for fd in self.commands:
            try:
                os.write(fd, _COMMAND.pack(-1, 0, 0))
            except OSError:
                pass
        for proc in self.procs:
            proc.join(timeout=5)
            if proc.exitcode is None:
                proc.terminate()
                proc.join(timeout=5)
        for fd in self.commands + self.errors:
            try:
                os.close(fd)
            except OSError:
                pass
        self.procs, self.commands, self.errors = [], [], []


def _child(run, w, command_fd, error_fd, meeting, parent):  # pragma: no cover - runs in the child
    import signal

    import torch

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it stops the children
    torch.set_num_threads(1)  # the workers are the parallelism

    def check_parent():
        if os.getppid() != parent:
            os._exit(0)

    meeting.check = check_parent
    while True:
        data = _read_exact(command_fd, _COMMAND.size)
        if data is None:
            return
        n, base, meetings = _COMMAND.unpack(data)
        if n < 0:
            return
        try:
            run(w, n, base, meetings)
        except Aborted:
            pass  # another worker failed: the parent reports it
        except BaseException as exc:  # report first, then release the others
            os.write(error_fd, f"{type(exc).__name__}: {exc}".encode("utf-8", "replace")[:ERROR_BYTES])
            meeting.abort()
