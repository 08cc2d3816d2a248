"""Ray for the length of one run: the cluster at ``--address``, or a Ray started here.

``ray_session(address)`` connects to ``address`` (or ``$RAY_ADDRESS``) and disconnects at the end;
with neither it starts a Ray on this machine for the run, without its dashboard and listening on
127.0.0.1 only, and shuts it down at the end. When Ray is already initialised in this process
(a caller, or a test, started it) the session uses it and leaves it running.

Loopback: on Linux, Ray turns 127.0.0.1 into the machine's outward address (the one that routes to
8.8.8.8) and its servers then listen on every interface. With Ray's multi-node switch off
(``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``, read once, when ``ray`` is first imported) it keeps
127.0.0.1 and every server listens there alone. The switch is set only when Ray will run here or
on a cluster at a loopback address, and only for the import; a local Ray that ends up on another
address is shut down with an error instead of being used.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from types import ModuleType

from colorizer.errors import ColorizerError

LOOPBACK = "127.0.0.1"
_MULTI_NODE_SWITCH = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
INSTALL_HINT = "pip install 'colorizer[cluster]'"


def import_ray(loopback: bool = False) -> ModuleType:
    """``ray``, imported now (never at module load: ``colorize --help`` stays quick)."""
    import sys

    first = "ray" not in sys.modules
    saved = os.environ.get(_MULTI_NODE_SWITCH)
    if loopback and first:
        os.environ[_MULTI_NODE_SWITCH] = "0"
    try:
        import ray
    except ImportError as exc:
        raise ColorizerError(
            f"--engine ray needs Ray, which is not installed: {INSTALL_HINT}"
        ) from exc
    finally:
        if loopback and first:
            _restore(_MULTI_NODE_SWITCH, saved)
    return ray


def _restore(name: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


def is_loopback(address: str) -> bool:
    host = address.removeprefix("ray://").rsplit(":", 1)[0].strip("[]")
    return host in _LOOPBACK_HOSTS or host.startswith("127.")


@contextlib.contextmanager
def ray_session(address: str | None = None, *, num_cpus: int | None = None) -> Iterator[ModuleType]:
    """Ray, connected for the block (see the module's docstring). ``num_cpus``: for a Ray
    started here (default: all of this machine's)."""
    address = address or os.environ.get("RAY_ADDRESS") or None
    ray = import_ray(loopback=address is None or is_loopback(address))
    _quiet_ray_data(ray)
    if ray.is_initialized():
        yield ray
        return
    if address is None:
        _start_local(ray, num_cpus)
    else:
        _connect(ray, address)
    try:
        yield ray
    finally:
        ray.shutdown()


def _start_local(ray: ModuleType, num_cpus: int | None) -> None:
    ray.init(
        # "local": a new Ray even where `ray start` left its address behind in Ray's temp folder.
        address="local",
        num_cpus=num_cpus,
        include_dashboard=False,
        logging_level=logging.WARNING,
    )
    where = {node["NodeManagerAddress"] for node in ray.nodes()}
    if where != {LOOPBACK}:
        ray.shutdown()
        raise ColorizerError(
            f"the Ray started for this run listens on {', '.join(sorted(where))}, not "
            f"{LOOPBACK} only (ray was imported before colorizer could keep it on the loopback "
            f"address; set {_MULTI_NODE_SWITCH}=0 before starting Python), so it was stopped"
        )


def _connect(ray: ModuleType, address: str) -> None:
    try:
        ray.init(address=address, logging_level=logging.WARNING)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ColorizerError(
            f"cannot connect to the Ray cluster at {address} ({exc}); a cluster started with "
            "token authentication (Ray's default) also needs RAY_AUTH_MODE=token here"
        ) from exc


def _quiet_ray_data(ray: ModuleType) -> None:
    """Ray Data's own progress bars and start-up lines off: the run prints its own progress."""
    import ray.data

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    # It would also warn, once per process, that its progress bars are off.
    logging.getLogger("ray.data").setLevel(logging.ERROR)


def cluster_resources(ray: ModuleType) -> tuple[float, float]:
    """The cluster's (CPUs, GPUs)."""
    resources = ray.cluster_resources()
    return float(resources.get("CPU", 0)), float(resources.get("GPU", 0))
