"""How priorsep's computations run: torch's threads, the device, memory, the optimiser.

- **Threads.** One torch intra-op thread is the default of the command line and of the
  Python API alike (:data:`DEFAULT_THREADS`): on a machine whose other cores are busy,
  more threads than free cores make every op wait for a descheduled thread. A call of the
  API (:class:`~priorsep.separate.Separator`, ``make_separator``, ``separate_file``)
  takes a ``threads`` argument, applied for the call and restored after
  (:func:`torch_threads`): ``"default"`` (the process's default, :func:`default_threads`),
  a number, or ``None`` (leave torch as it is).
- **Devices.** :func:`resolve_device`: a device name checked against this machine.
- **Processes.** :func:`init_processes`, :func:`rank_and_world`, :func:`teardown`: the
  ``torch.distributed`` process group of a ``torchrun`` launch (:mod:`priorsep.launch`
  reads the launch's environment), joined, asked and left the same way by training and by
  a corpus's separation.
- **Memory.** :func:`keep_heap`: freed tensors' memory reused, not returned at every
  free; :func:`trim_heap`: the C heap's free memory given back between chunks.
- **The optimiser.** :class:`Adam`: the search's Adam update written out, the same
  arithmetic as ``torch.optim.Adam`` with its defaults, so that the search never imports
  what ``torch.optim`` brings in on first use (``torch._dynamo``).

Nothing here imports torch at import time: the command line imports this module before it
knows whether a command needs torch. This module is the layer below both inference
(:mod:`priorsep.separate`) and training (:mod:`priorsep.training`); it imports neither.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import TYPE_CHECKING, Any, Iterator, Sequence

from .errors import ConfigError
from .launch import local_rank, under_torchrun

if TYPE_CHECKING:
    import torch
    from torch import Tensor

__all__ = ["DEFAULT_THREADS", "THREADS_VARIABLE", "Adam", "default_threads", "init_processes", "keep_heap",
           "rank_and_world", "resolve_device", "resolve_threads", "set_threads", "teardown", "torch_threads",
           "trim_heap"]

#: torch's intra-op threads when nothing says otherwise (the command line's ``--threads``
#: default and the API's): on a 2-core machine with one core busy, torch's own default (one
#: thread per core) waits for the busy core at every op
DEFAULT_THREADS = 1
#: the environment variable that holds the process's default (:func:`set_threads` sets it,
#: so that worker processes inherit it)
THREADS_VARIABLE = "PRIORSEP_THREADS"


def set_threads(threads: int) -> None:
    """Make ``threads`` the default of this process and of the processes it starts: torch's
    (and BLAS's) thread count now, and the ``"default"`` of every later API call.

    torch is not imported here (a command that needs none, like ``priorsep priors``, or a
    refused argument, then finishes at once): torch reads ``OMP_NUM_THREADS`` when it is
    first imported, and a torch already imported (a caller's) is set directly.

    Raises:
        ConfigError: ``threads`` is not a whole number >= 1.
    """
    threads = _check_threads(threads)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", THREADS_VARIABLE):
        os.environ[var] = str(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


def default_threads() -> int:
    """The process's default thread count: ``PRIORSEP_THREADS`` when it holds a whole
    number >= 1 (the command line's ``--threads`` sets it), else :data:`DEFAULT_THREADS`."""
    text = os.environ.get(THREADS_VARIABLE, "")
    return int(text) if text.isdigit() and int(text) >= 1 else DEFAULT_THREADS


def _check_threads(threads: Any) -> int:
    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
        raise ConfigError(f"threads must be a whole number >= 1, 'default' or None; got {threads!r}")
    return threads


def resolve_threads(threads: int | str | None) -> int | None:
    """The thread count a call uses: ``"default"`` -> :func:`default_threads`, a number as
    it is, ``None`` -> ``None`` (torch's setting left alone).

    Raises:
        ConfigError: anything else (one line).
    """
    if threads is None:
        return None
    if threads == "default":
        return default_threads()
    return _check_threads(threads)


@contextlib.contextmanager
def torch_threads(threads: int | str | None = "default") -> Iterator[int | None]:
    """Run the body with torch's intra-op threads set to ``threads`` (:func:`resolve_threads`)
    and restore the previous count after, also when the body raises. Yields the count used
    (``None``: torch's left as it was).

    >>> import torch
    >>> before = torch.get_num_threads()
    >>> with torch_threads(1) as used:
    ...     (used, torch.get_num_threads())
    (1, 1)
    >>> torch.get_num_threads() == before
    True
    """
    wanted = resolve_threads(threads)
    if wanted is None:
        yield None
        return
    import torch

    before = torch.get_num_threads()
    if before != wanted:
        torch.set_num_threads(wanted)
    try:
        yield wanted
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


def resolve_device(device: "str | torch.device") -> "torch.device":
    """``device`` as a :class:`torch.device`, or one :class:`~priorsep.errors.ConfigError`
    line when this machine does not have it (e.g. ``cuda`` without a GPU).

    >>> resolve_device("cpu")
    device(type='cpu')
    """
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(f"device {device!r} is not a device torch knows ({exc})") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {device!r}: no CUDA GPU is available here (torch {torch.__version__}); "
                              "use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(f"device {device!r}: this machine has {torch.cuda.device_count()} CUDA GPU(s)")
    elif dev.type != "cpu":
        raise ConfigError(f"device {device!r}: priorsep runs on cpu or cuda")
    return dev


def init_processes(device: str) -> tuple[int, str]:
    """Join the process group when launched by ``torchrun`` (``WORLD_SIZE`` > 1); a process
    already in it stays in it. The backend is nccl for a CUDA device, gloo otherwise.

    Returns:
        this process's rank and the device it runs on (``cuda:<local rank>`` for
        ``"cuda"``; ``(0, device)`` outside ``torchrun``).
    """
    if not under_torchrun():
        return 0, device
    import torch
    import torch.distributed as dist

    if device == "cuda":
        local = local_rank()
        torch.cuda.set_device(local)
        device = f"cuda:{local}"
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return dist.get_rank(), device


def rank_and_world() -> tuple[int, int]:
    """This process's rank and the number of processes (``(0, 1)`` without a process group)."""
    import torch.distributed as dist

    return (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)


def teardown(barrier: bool = True) -> None:
    """Leave the process group, if any: first wait for every process (``barrier``, so that
    no process leaves while rank 0 still writes), then destroy it. ``barrier=False`` after
    an error, where the other processes may never arrive. Safe to call twice."""
    import torch.distributed as dist

    if dist.is_initialized():
        if barrier:
            dist.barrier()
        dist.destroy_process_group()


_LIBC: Any = None
_HEAP_KEPT = False
#: glibc's ``mallopt`` parameters: blocks from this size on are mapped, and free memory
#: above this much at the heap's top is given back at once (the largest values glibc's own
#: dynamic thresholds reach, 32 and 64 MiB on 64-bit systems)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD, TRIM_THRESHOLD = 32 << 20, 64 << 20


def _libc() -> Any:
    """glibc, or ``False`` where there is none (``malloc_trim`` and ``mallopt`` missing)."""
    global _LIBC
    if _LIBC is None:
        import ctypes
        import ctypes.util

        name = ctypes.util.find_library("c")
        try:
            _LIBC = ctypes.CDLL(name) if name else False
        except OSError:
            _LIBC = False
        if _LIBC is not False and not (hasattr(_LIBC, "malloc_trim") and hasattr(_LIBC, "mallopt")):
            _LIBC = False
    return _LIBC


def trim_heap() -> None:
    """Give the C heap's free memory back to the system (glibc's ``malloc_trim``; nothing
    elsewhere). Between the chunks of a long input the same sizes are allocated and freed
    again, and glibc keeps the freed blocks, so a long input's peak memory would grow
    chunk after chunk without it (benchmarks/README.md, "Long inputs")."""
    if _libc():
        _LIBC.malloc_trim(0)


def keep_heap() -> None:
    """Let glibc reuse the memory of freed tensors instead of returning it to the system at
    every free (once per process; nothing without glibc).

    A search step allocates and frees the same tensors (hundreds of kilobytes each) every
    step; with glibc's starting thresholds each of them is mapped afresh, or the heap's
    top given back and grown again, and every page of it faults on first use. Fixing the
    thresholds at :data:`MMAP_THRESHOLD` and :data:`TRIM_THRESHOLD` keeps those pages;
    :func:`trim_heap` still gives everything free back between chunks. Results do not
    change: only where memory comes from.
    """
    global _HEAP_KEPT
    if not _HEAP_KEPT and _libc():
        _LIBC.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
        _LIBC.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    _HEAP_KEPT = True


class Adam:
    """Adam (Kingma and Ba, ICLR 2015) on a list of tensors, with the arithmetic of
    ``torch.optim.Adam(params, lr)`` with its other settings at their defaults (betas 0.9
    and 0.999, eps 1e-8, no weight decay, no amsgrad), op for op as torch runs it for CPU
    tensors, so that a search gives the same numbers as with ``torch.optim.Adam``.

    Args:
        params: the tensors to update (leaves with ``requires_grad``); a tensor whose
            ``grad`` is ``None`` at a step is skipped, as torch does.
        lr: the learning rate.

    Shape:
        every state tensor has its parameter's shape.
    """

    def __init__(self, params: Sequence["Tensor"], lr: float, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8):
        import torch

        self._torch = torch
        self.params, self.lr, self.betas, self.eps = list(params), lr, betas, eps
        self.state: dict[int, tuple[int, Tensor, Tensor]] = {}  # index -> (steps, exp_avg, exp_avg_sq)

    def zero_grad(self) -> None:
        """Drop every parameter's gradient (``set_to_none``)."""
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        """One update of every parameter that has a gradient, in place, without autograd."""
        beta1, beta2 = self.betas
        with self._torch.no_grad():
            for i, p in enumerate(self.params):
                grad = p.grad
                if grad is None:
                    continue
                if i not in self.state:
                    torch = self._torch
                    self.state[i] = (0, torch.zeros_like(p, memory_format=torch.preserve_format),
                                     torch.zeros_like(p, memory_format=torch.preserve_format))
                step, exp_avg, exp_avg_sq = self.state[i]
                step += 1
                self.state[i] = (step, exp_avg, exp_avg_sq)
                exp_avg.lerp_(grad, 1 - beta1)
                exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                bias_correction1 = 1 - beta1 ** float(step)
                bias_correction2 = 1 - beta2 ** float(step)
                step_size = self.lr / bias_correction1
                denom = (exp_avg_sq.sqrt() / bias_correction2 ** 0.5).add_(self.eps)
                p.addcdiv_(exp_avg, denom, value=-step_size)
