"""One ``jaxinit sweep`` or ``jaxinit train`` command on many processes and hosts.

JAX's multi-controller runtime joins the processes: every process runs the same command, and
:func:`join` calls :func:`jax.distributed.initialize` before the backend starts. The work is
shared through the results folder, as between any writers of one folder
(:mod:`jaxinit.lab.store.writers`): process ``i`` of ``n`` claims its share of the chunks at once
(a contiguous run in program order: each process compiles as few programs as it can;
:func:`jaxinit.lab.run._take_share`), computes them on its own local devices and writes their
chunk files, then takes what no live process holds; a member's numbers depend on its config and
seed alone, so the assembled arrays equal a single process's bit for bit, whoever computed what.
The coordinator's key-value store carries the few words the processes exchange (:meth:`Cluster.agree`):

1. the config: every process loads its own, publishes its hash (and folder, ``--fresh``), and
   all refuse to start, naming the processes, unless they agree (:func:`check_config`);
2. the folder: process 0 prepares it (``--fresh`` included) while the others wait, then each of
   them checks that it sees process 0's files there and can write (:func:`prepare_folder`);
3. the end: every process computes until every seed is written (taking over the seeds of a
   writer that died, waiting for the others'), then process 0 assembles ``arrays.npz``, the
   summary and the figures while the others wait for its word (:meth:`Cluster.wait`) and leave.

Who joins (:func:`launch_from`): the flags ``--coordinator HOST:PORT --num-processes N
--process-id I``, else the environment variables ``JAX_COORDINATOR_ADDRESS`` (read by JAX too),
``JAX_NUM_PROCESSES`` and ``JAX_PROCESS_ID``, else a launcher that started more than one process
and that :func:`jax.distributed.initialize` detects by itself: SLURM (``srun``), Open MPI
(``mpirun``), a Cloud TPU pod slice. Without any of those a command runs as one process.

A process that dies ends the job (JAX's health checks stop the others); its finished chunks stay
in the folder, and the same command, on any number of processes, finishes it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import secrets
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NoReturn

# Seconds a process waits for the coordinator and for every process to join (JAX's own default
# initialization_timeout): a cluster's processes may start minutes apart.
JOIN_TIMEOUT_S = 300.0
# JAX gives up on joining this long after jaxinit has (its own failure aborts the process).
_JAX_MARGIN_S = 30
_KEYS = "jaxinit"
_NO_LIMIT_S = 7 * 24 * 3600.0  # --join-timeout 0: a week
_POLL_MS = 500
ENV_COORDINATOR, ENV_NUM_PROCESSES, ENV_PROCESS_ID = "JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID"


class ClusterError(Exception):
    """The processes cannot run the command together (said in one line; ``jaxinit`` exits 2)."""

    status = 2


class PeerStopped(ClusterError):
    """Another process of the job stopped with an error (``jaxinit`` exits 1)."""

    status = 1


@dataclasses.dataclass(frozen=True)
class Launch:
    """How to join: ``coordinator`` (``HOST:PORT``; ``None``: chosen by the launcher), the number of
    processes and this one's id (``None``: the launcher's), and where they came from."""

    coordinator: str | None
    num_processes: int | None
    process_id: int | None
    source: str


def _launchers() -> list[Any]:
    """JAX's cluster environments that :func:`jax.distributed.initialize` detects by itself
    (SLURM, Open MPI, Cloud TPU), present here; never the opt-in ones (mpi4py) nor Kubernetes
    (pass the flags there)."""
    try:
        from jax._src import clusters
    except ImportError:  # pragma: no cover - a jax without cluster detection
        return []
    present = []
    for env in clusters.ClusterEnv._cluster_types:
        if env.opt_in_only_method or env.__name__ in ("K8sCluster", "Mpi4pyCluster"):
            continue
        try:
            if env.is_env_present():
                present.append(env)
        except Exception:  # noqa: BLE001 - a detector that fails detects nothing
            continue
    return present


def _int_or_none(name: str, text: str | None) -> int | None:
    if text is None or text == "":
        return None
    try:
        return int(text)
    except ValueError:
        raise ClusterError(f"{name} must be an integer; got {text!r}") from None


def launch_from(coordinator: str | None = None, num_processes: int | None = None, process_id: int | None = None,
                environ: Mapping[str, str] | None = None) -> Launch | None:
    """Whether and how this process joins a cluster: ``None`` for a single process.

    The flags win over the environment (``JAX_COORDINATOR_ADDRESS``, ``JAX_NUM_PROCESSES``,
    ``JAX_PROCESS_ID``), which wins over a launcher (SLURM, Open MPI, Cloud TPU: JAX's detection,
    used when it finds more than one process). ``num_processes == 1`` is a single process.

    Raises:
      ClusterError: a value out of range (``process_id`` not in ``0 .. num_processes - 1``, a
        coordinator that is not ``HOST:PORT``), or a piece missing with nothing to fill it.
    """
    env = os.environ if environ is None else environ
    given = {"coordinator": coordinator, "num_processes": num_processes, "process_id": process_id}
    from_env = {"coordinator": env.get(ENV_COORDINATOR) or None,
                "num_processes": _int_or_none(ENV_NUM_PROCESSES, env.get(ENV_NUM_PROCESSES)),
                "process_id": _int_or_none(ENV_PROCESS_ID, env.get(ENV_PROCESS_ID))}
    values = {k: given[k] if given[k] is not None else from_env[k] for k in given}
    if any(v is not None for v in given.values()):
        source = "flags"
    elif any(v is not None for v in from_env.values()):
        source = "environment"
    else:
        source = None
    launchers = _launchers() if None in values.values() else []
    if launchers:
        launcher = launchers[0]
        try:
            if values["num_processes"] is None:
                values["num_processes"] = int(launcher.get_process_count())
            if values["process_id"] is None:
                values["process_id"] = int(launcher.get_process_id())
        except Exception as err:  # noqa: BLE001 - a launcher's variables that do not parse
            raise ClusterError(f"cannot read the process count and id that {launcher.name} gives: {err}") from None
        if source is None:
            if values["num_processes"] <= 1:
                return None  # a launcher that started one process: nothing to join
            source = launcher.name
    if source is None:
        return None
    n, i, address = values["num_processes"], values["process_id"], values["coordinator"]
    if n is None:
        raise ClusterError("--num-processes N is needed to join a cluster (or JAX_NUM_PROCESSES, or a launcher: "
                           "srun, mpirun, a TPU pod slice)")
    if n < 1:
        raise ClusterError(f"--num-processes must be >= 1; got {n}")
    if i is None:
        raise ClusterError(f"--process-id I is needed to join a cluster of {n} processes (or JAX_PROCESS_ID, or a "
                           "launcher: srun, mpirun, a TPU pod slice)")
    if not 0 <= i < n:
        ids = "0" if n == 1 else ("0 and 1" if n == 2 else f"0 .. {n - 1}")
        raise ClusterError(f"--process-id {i} is out of range: with --num-processes {n} the process ids are {ids}")
    if n == 1:
        return None
    if address is None and not launchers:
        raise ClusterError(f"--coordinator HOST:PORT is needed to join a cluster of {n} processes (or "
                           f"{ENV_COORDINATOR}): process 0's host and a free port, the same on every process")
    if address is not None:
        _split_address(address)
    return Launch(address, n, i, source)


def _split_address(address: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    host = host.strip("[]")
    try:
        number = int(port)
    except ValueError:
        number = -1
    if not sep or not host or not 0 < number < 65536:
        raise ClusterError(f"--coordinator must be HOST:PORT (process 0's host name or address and a port "
                           f"1-65535, e.g. 10.0.0.1:8476); got {address!r}")
    return host, number


def _reachable(host: str, port: int, seconds: float) -> bool:
    try:
        with socket.create_connection((host, port), timeout=max(0.1, min(seconds, 2.0))):
            return True
    except OSError:
        return False


def _wait_for_coordinator(launch: Launch, deadline: float, timeout: float) -> None:
    """Process ``i > 0``: wait until process 0's coordinator accepts connections (JAX would abort
    the process after its own timeout: this one says why, and ends on time)."""
    host, port = _split_address(launch.coordinator)
    while True:
        if _reachable(host, port, deadline - time.monotonic()):
            return
        if time.monotonic() >= deadline:
            raise ClusterError(
                f"no coordinator answers at {launch.coordinator} (process {launch.process_id} of "
                f"{launch.num_processes} gave up after {timeout:g} s): start process 0 with the same "
                "--coordinator (its host name or address, and a free port), or give a longer --join-timeout")
        time.sleep(0.2)


@dataclasses.dataclass
class Cluster:
    """This process's place in a joined job, and the words the processes exchange (the
    coordinator's key-value store; every key is written once)."""

    process_id: int
    num_processes: int
    coordinator: str
    source: str
    join_s: float
    host: str = dataclasses.field(default_factory=socket.gethostname)

    @property
    def client(self) -> Any:
        from jax._src import distributed

        return distributed.global_state.client

    def describe(self) -> str:
        return f"process {self.process_id} of {self.num_processes}"

    def _key(self, name: str, process: int) -> str:
        return f"{_KEYS}/{name}/{process}"

    def publish(self, name: str, value: Any) -> None:
        """Publish this process's ``value`` (JSON) under ``name``."""
        self.client.key_value_set(self._key(name, self.process_id), json.dumps(value))

    def wait(self, name: str, process: int) -> Any:
        """``process``'s value under ``name``, once it has published it. Raises
        :class:`PeerStopped` when a process stops with an error meanwhile (:meth:`abort`)."""
        key = self._key(name, process)
        while True:
            try:
                return json.loads(self.client.blocking_key_value_get(key, _POLL_MS))
            except Exception as err:  # noqa: BLE001 - JaxRuntimeError: not there yet (DEADLINE_EXCEEDED)
                if "DEADLINE_EXCEEDED" not in str(err) and "NOT_FOUND" not in str(err):
                    raise
            self._check_stopped()

    def agree(self, name: str, value: Any) -> list[Any]:
        """Publish ``value`` and return every process's, by process id (a barrier)."""
        self.publish(name, value)
        return [value if i == self.process_id else self.wait(name, i) for i in range(self.num_processes)]

    def abort(self, message: str) -> None:
        """Tell the other processes that this one stops with ``message`` (best effort)."""
        with contextlib.suppress(Exception):
            self.client.key_value_set(self._key("stopped", self.process_id),
                                      json.dumps({"host": self.host, "message": message}))

    def _check_stopped(self) -> None:
        try:
            stopped = self.client.key_value_dir_get(f"{_KEYS}/stopped/")
        except Exception:  # noqa: BLE001 - the coordinator is going away: JAX ends the process
            return
        for key, text in stopped:
            process = int(key.rsplit("/", 1)[-1])
            if process != self.process_id:
                info = json.loads(text)
                raise PeerStopped(f"process {process} (host {info.get('host')}) stopped: {info.get('message')}")

    def leave(self) -> None:
        """Leave the job (:func:`jax.distributed.shutdown`: waits for every process to leave)."""
        import jax

        with contextlib.suppress(Exception):
            jax.distributed.shutdown()


def join(launch: Launch, timeout: float = JOIN_TIMEOUT_S,
         give_up: Callable[[str], NoReturn] | None = None) -> Cluster:
    """Join the job: :func:`jax.distributed.initialize`, then start the backend (every process's
    devices known to all). Call it before anything starts JAX's backend.

    On the CPU the processes' collectives are gloo's (``jax_cpu_collectives_implementation``;
    the engines need none: every process runs its own seeds on its own devices).

    Within ``timeout`` seconds (0: no limit) every process must have joined. Process ``i > 0``
    first waits for the coordinator to accept connections (:class:`ClusterError` after
    ``timeout``); then, should some process not join in time, ``give_up(message)`` is called
    from a watchdog thread (JAX would abort the process a little later, with a stack trace): it
    must end the process.

    Raises:
      ClusterError: the coordinator does not answer, or cannot start (its port taken), or JAX
        refuses the arguments; RuntimeError: JAX's backend has already started.
    """
    import jax

    if "JAX_CPU_COLLECTIVES_IMPLEMENTATION" not in os.environ:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    limited = timeout > 0
    deadline = time.monotonic() + (timeout if limited else _NO_LIMIT_S)
    if launch.process_id not in (None, 0) and launch.coordinator is not None:
        _wait_for_coordinator(launch, deadline, timeout)
    where = launch.coordinator or f"the coordinator {launch.source} chooses"
    who = (f"process {launch.process_id} of {launch.num_processes}" if launch.process_id is not None
           else "this process")
    message = (f"could not join the cluster at {where} within {timeout:g} s ({who}): not every one of the "
               f"{launch.num_processes} processes joined. Start the same command on every process (ids 0 .. "
               f"{(launch.num_processes or 1) - 1}, the same --coordinator and --num-processes), or give a longer "
               "--join-timeout")
    watchdog = threading.Timer(max(0.0, deadline - time.monotonic()), give_up or _raise_in_thread, (message,))
    watchdog.daemon = True
    if limited:
        watchdog.start()
    start = time.perf_counter()
    try:
        jax.distributed.initialize(launch.coordinator, launch.num_processes, launch.process_id,
                                   initialization_timeout=int(timeout if limited else _NO_LIMIT_S) + _JAX_MARGIN_S)
        jax.devices()  # the backend: every process's devices (a barrier of its own)
    except RuntimeError as err:
        text = str(err).splitlines()[0] if str(err) else type(err).__name__
        if "must be called before" in text or "only be called once" in text:
            raise  # a programming error, not the cluster's
        if "Failed to start RPC server" in text:
            raise ClusterError(f"cannot start the coordinator at {launch.coordinator} (process 0): its port is "
                               "taken or not on this host; choose another --coordinator port") from None
        raise ClusterError(f"could not join the cluster at {where} ({who}): {text}") from None
    except ValueError as err:
        raise ClusterError(f"could not join the cluster at {where}: {err}") from None
    finally:
        watchdog.cancel()
    from jax._src import distributed

    state = distributed.global_state
    return Cluster(process_id=jax.process_index(), num_processes=jax.process_count(),
                   coordinator=state.coordinator_address or where, source=launch.source,
                   join_s=time.perf_counter() - start)


def _raise_in_thread(message: str) -> NoReturn:  # pragma: no cover - the CLI passes its own give_up
    raise SystemExit(message)


# -- the command, shared -------------------------------------------------------------------------
def _describe(value: Mapping[str, Any]) -> str:
    fresh = " with --fresh" if value.get("fresh") else ""
    return f"{value.get('source')} (config hash {value.get('hash')}) into {value.get('dir')}{fresh}"


def check_config(cluster: Cluster, load: Callable[[], Any], fresh: bool) -> Any:
    """Every process loads its config (``load()``) and publishes its hash, results folder and
    ``fresh``; returns the config when all agree.

    Raises:
      whatever ``load`` raised, on the process it failed on (the others: :class:`ClusterError`
      naming it); ClusterError: the processes were started with different configs or flags,
      naming them.
    """
    try:
        config = load()
    except Exception as err:
        cluster.agree("config", {"error": str(err), "host": cluster.host})
        raise
    mine = {"kind": config.kind, "hash": config.config_hash(), "source": config.source,
            "dir": str(config.output.dir), "fresh": bool(fresh), "host": cluster.host}
    every = cluster.agree("config", mine)
    failed = [(i, v) for i, v in enumerate(every) if "error" in v]
    if failed:
        i, v = failed[0]
        raise ClusterError(f"process {i} (host {v.get('host')}) cannot load its config: {v['error']}")
    keys = ("kind", "hash", "dir", "fresh")
    odd = [i for i, v in enumerate(every) if any(v.get(k) != every[0].get(k) for k in keys)]
    if odd:
        shown = "; ".join(f"process {i} (host {every[i].get('host')}) runs {_describe(every[i])}"
                          for i in [0, *odd[:3]])
        raise ClusterError(f"the processes were started with different configs: {shown}. Start every process "
                           "with the same command (config, --set, --seeds, --out, --fresh)")
    return config


def prepare_folder(cluster: Cluster, config: Any, fresh: bool) -> Path:
    """Process 0 prepares the results folder (``fresh`` clears it: once, before anyone writes)
    while the others wait; then each of them checks that it sees a file process 0 wrote there and
    that it can write there. Returns the folder.

    Raises:
      ResultsError: process 0 cannot prepare it (on process 0; the others: :class:`ClusterError`);
      ClusterError: a process that does not see process 0's files (a folder that is not on a
      filesystem every host shares) or cannot write there, naming each.
    """
    from jaxinit.lab import store

    path = Path(config.output.dir)
    status: dict[str, Any] = {"host": cluster.host}
    probe = None
    if cluster.process_id == 0:
        try:
            with store.ResultsFolder(path) as folder:
                folder.prepare(config, fresh=fresh)
            probe = path / f".join-{secrets.token_hex(6)}"
            probe.write_text(cluster.host, encoding="utf-8")
            status["probe"] = probe.name
        except Exception as err:
            cluster.agree("prepared", {**status, "error": str(err)})
            raise
    every = cluster.agree("prepared", status)
    if "error" in every[0]:
        raise ClusterError(f"process 0 (host {every[0].get('host')}) cannot prepare the results folder: "
                           f"{every[0]['error']}")
    problem = None if cluster.process_id == 0 else _shared_problem(path, every[0]["probe"])
    every = cluster.agree("checked", {"host": cluster.host, "problem": problem})
    if probe is not None:
        with contextlib.suppress(OSError):
            probe.unlink()
    bad = [(i, v) for i, v in enumerate(every) if v.get("problem")]
    if bad:
        shown = "; ".join(f"process {i} (host {v.get('host')}) {v['problem']}" for i, v in bad[:4])
        raise ClusterError(f"the results folder {path} is not usable by every process: {shown}. Put it on a "
                           "filesystem that every host mounts at the same path, writable by every process (--out)")
    return path


def _shared_problem(path: Path, probe: str) -> str | None:
    """What keeps this process from sharing ``path`` with process 0, or ``None``."""
    if not path.is_dir():
        return "has no such folder (it is not shared with process 0's host)"
    if not (path / probe).exists():
        return "does not see the files process 0 writes there (a folder local to each host?)"
    try:
        fd, name = tempfile.mkstemp(dir=path, prefix=".write-test-")
        os.close(fd)
        os.unlink(name)
    except OSError as err:
        return f"cannot write there ({err.strerror or err})"
    return None


__all__ = ["JOIN_TIMEOUT_S", "Cluster", "ClusterError", "Launch", "PeerStopped", "check_config", "join",
           "launch_from", "prepare_folder"]
