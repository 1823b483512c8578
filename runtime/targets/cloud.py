"""What every vendor's cloud client shares: the `SubmissionClient` protocol a target
returns from `Target.submission_client()`, the `Device` it resolves, `GuardedClient`
(vendor calls whose errors become one Q0351 line, credentials masked), and the width
check of an offline substitute. `submit` drives a client; the vendor modules
implement one each. Importing this module loads no vendor SDK."""

from __future__ import annotations

import os
import re
import warnings
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Callable, ClassVar, Iterable, Optional

from qnnc.compiler.diagnostics import QnncError
from qnnc.runtime.targets.errors import refuse

_SAMPLER_DEPRECATION = r".*SamplerV2 class is deprecated.*"


@dataclass(frozen=True)
class Device:
    """A vendor device: what the vendor calls it, and what qnnc compiles against offline."""

    target: str
    name: str  # ibm_brisbane; an Amazon Braket ARN; H2-1
    compile_backend: str  # fake_brisbane; forte-1; H2-1
    client: str  # the vendor client, in words
    local_client: str  # its offline substitute, in words


class SubmissionClient(ABC):
    """One vendor's cloud client. `submit` calls, in order: `device`, `refusal` (a
    vendor that cannot take the job says so), `credential_sources` (cloud only; Q0350
    when none is found, before any client is constructed), then `executor`."""

    target: ClassVar[str]
    local_qubits: ClassVar[Optional[int]]  # widest circuit the offline substitute runs here
    secret_env: ClassVar[tuple[str, ...]] = ()  # variables whose values are masked
    credentials_of: ClassVar[str] = ""  # whose credentials, in words (Q0350)
    setup_help: ClassVar[Optional[str]] = None  # how to set credentials up (Q0350)
    client_help: ClassVar[Optional[str]] = None  # what to check after a client error (Q0351)

    @abstractmethod
    def device(self, backend: Optional[str]) -> Device:
        """The device `--backend` names (None: the default). Q0304 for an unknown one."""

    def refusal(self, device: Device, local: bool) -> Optional[QnncError]:
        """Why this vendor's client cannot run the job here (None: it can)."""
        return None

    def plan_refusal(self, local: bool) -> Optional[str]:
        """`refusal` in words, for a plan (None: it can run)."""
        return None

    def credential_sources(self) -> tuple[list[str], list[str]]:
        """(sources found, sources looked for): names of environment variables and paths
        of files, never their values."""
        return [], []

    @abstractmethod
    def executor(self, compiled, device: Device, log: list, *, local: bool, ideal: bool,
                 seed: Optional[int], progress: Optional[Callable[[dict], None]]):
        """A `host.Executor` running `compiled` on `device` (or, with `local`, on the
        offline substitute); each job submitted goes to `log` and `progress`."""

    @abstractmethod
    def jobs(self, compiled, parameter_sets: int) -> dict:
        """What a run sends, for a plan: {"kind", "count", ...}."""

    @abstractmethod
    def describe_jobs(self, jobs: dict, rounds: int) -> str:
        """`jobs` in words, one line of a rendered plan."""


def home() -> str:
    return os.path.expanduser("~")  # read now: tests and users point HOME elsewhere


def environment_sources(names: Iterable[str], found: list[str], looked: list[str]) -> None:
    """Record each environment variable of `names` as looked for, and found when set."""
    for var in names:
        looked.append(f"{var} (environment)")
        if os.environ.get(var):
            found.append(f"{var} (environment)")


def file_source(path: str, found: list[str], looked: list[str]) -> None:
    looked.append(path)
    if os.path.isfile(path):
        found.append(path)


# --------------------------------------------------------------------------- vendor errors


def mask(text: str, secret_env: Optional[Iterable[str]] = None) -> str:
    """`text` with credential values masked: those of the variables `secret_env` (None:
    every registered vendor's), and `key=value` secrets."""
    for var in all_secret_env() if secret_env is None else secret_env:
        value = os.environ.get(var)
        if value and len(value) >= 4:
            text = text.replace(value, "***")
    text = re.sub(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+", r"\1 ***", text)
    return re.sub(r"(?i)\b(token|api[_-]?key|apikey|secret|password|authorization)(\W{0,3}[:=]\W{0,2})"
                  r"(?!\*\*\*)[^\s\"',;}]+", r"\1\2***", text)


def describe(exc: BaseException) -> str:
    """A vendor error in one masked line."""
    lines = [l.strip() for l in str(exc).splitlines() if l.strip()]
    text = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    text = mask(text)
    return text if len(text) <= 300 else text[:297] + "..."


class GuardedClient:
    """Calls into a vendor client; any error becomes one Q0351 line."""

    def __init__(self, label: str, log: list, progress: Optional[Callable[[dict], None]] = None,
                 *, help: Optional[str] = None):
        self.label = label
        self.log = log  # the jobs submitted so far: {"id", ...}
        self.progress = progress
        self.help = help  # what to check, the vendor's `client_help`

    def record(self, job: dict) -> None:
        self.log.append(job)
        if self.progress is not None:
            self.progress(job)

    def call(self, what: str, fn: Callable, *args, **kwargs):
        try:
            with warnings.catch_warnings():
                # qiskit-ibm-runtime deprecates SamplerV2 (0.50); the warning is not the user's
                warnings.filterwarnings("ignore", message=_SAMPLER_DEPRECATION,
                                        category=DeprecationWarning)
                return fn(*args, **kwargs)
        except (QnncError, KeyboardInterrupt):
            raise
        except Exception as exc:  # every vendor error type, reported in one line
            raise self.error(f"failed while {what}: {describe(exc)}") from None

    def error(self, message: str) -> QnncError:
        notes = []
        if self.log:
            notes.append("submitted before the failure: " +
                         ", ".join(str(j["id"]) for j in self.log))
        return refuse("Q0351", f"{self.label} {message}", notes=notes, help=self.help)


def all_secret_env() -> tuple[str, ...]:
    """The credential variables of every registered vendor: a message is masked of all."""
    from qnnc.runtime.targets.registry import TARGETS

    return tuple(v for name in TARGETS for v in TARGETS[name].submission_client().secret_env)


def check_local_width(circuits, stats: Callable, limit: int, what: str) -> None:
    """Q0316 for a circuit wider than an offline substitute simulates here."""
    for c in circuits:
        n = stats(c)["qubits"]
        if n > limit:
            raise refuse("Q0316", f"a circuit of {n} qubits is too wide for {what} here "
                         f"(at most {limit})",
                         help="compile with fewer copies (`--copies 1`), or narrower layers")


# --------------------------------------------------------------------------- plans


def job_kind(jobs: dict) -> str:
    """The kind of job, singular for one."""
    return jobs["kind"] if jobs["count"] != 1 else jobs["kind"].removesuffix("s")


def jobs_per_parameter_set(compiled, parameter_sets: int, kind: str) -> dict:
    """A plan's jobs for a client that runs one job per circuit and parameter set: a
    bound for a layered program, whose later parameter sets depend on outcomes."""
    layered = compiled.lowered.strategy == "layered"
    return {"kind": kind, "count": parameter_sets,
            "exact": not layered or parameter_sets == len(compiled.circuits)}


def describe_jobs_per_parameter_set(jobs: dict) -> str:
    return (f"{'' if jobs['exact'] else 'at most '}{jobs['count']} {job_kind(jobs)} (one per "
            f"circuit and parameter set)")
