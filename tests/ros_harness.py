"""Test harness for ROS 2: nodes as real processes, each test on its own DDS domain, waits with timeouts.

- ``allocate_domain_id()`` hands out a ROS_DOMAIN_ID no other test of this run uses (and, via a lock file per id,
  no concurrent test run on this machine either).
- ``ros_env(domain_id)`` is the environment for a node process: that domain, localhost-only discovery, Fast DDS.
- ``NodeProcess`` starts a node (``python -m module`` or any command) with its output in a log file, and stops it
  with SIGINT, then SIGTERM, then SIGKILL; shared-memory files its Fast DDS participant leaves behind are removed.
- ``RosProbe`` is an in-test rclpy node on its own context and domain, to subscribe and wait for messages.
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

DOMAIN_RANGE = range(20, 100)
_LOCK_DIR = Path(tempfile.gettempdir()) / "egovla_ros_domains"
_held_locks: dict[int, object] = {}


def allocate_domain_id() -> int:
    """A ROS domain id unused by any other live test on this machine (held until ``release_domain_id``)."""
    _LOCK_DIR.mkdir(exist_ok=True)
    start = (os.getpid() * 7) % len(DOMAIN_RANGE)
    for k in range(len(DOMAIN_RANGE)):
        domain = DOMAIN_RANGE[(start + k) % len(DOMAIN_RANGE)]
        if domain in _held_locks:
            continue
        f = open(_LOCK_DIR / f"{domain}.lock", "w")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.close()
            continue
        _held_locks[domain] = f
        return domain
    raise RuntimeError(f"no free ROS domain id in {DOMAIN_RANGE}")


def release_domain_id(domain: int):
    f = _held_locks.pop(domain, None)
    if f is not None:
        fcntl.flock(f, fcntl.LOCK_UN)
        f.close()


def ros_env(domain_id: int, extra: dict | None = None) -> dict:
    env = dict(os.environ)
    env.update(
        ROS_DOMAIN_ID=str(domain_id),
        ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
        RMW_IMPLEMENTATION="rmw_fastrtps_cpp",
        PYTHONUNBUFFERED="1",
        RCUTILS_COLORIZED_OUTPUT="0",
    )
    env.update(extra or {})
    return env


def _fastdds_shm_files() -> set[str]:
    try:
        return {n for n in os.listdir("/dev/shm") if "fastdds" in n}
    except FileNotFoundError:
        return set()


def _open_shm_files() -> set[str]:
    """Names of /dev/shm files some live process has open or mapped."""
    used = set()
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("/dev/shm/"):
                    used.add(target[len("/dev/shm/"):])
            with open(f"/proc/{pid}/maps") as maps:
                for line in maps:
                    if "/dev/shm/" in line:
                        used.add(line.rsplit("/dev/shm/", 1)[1].strip())
        except OSError:
            continue
    return used


class NodeProcess:
    """A node (or any command) running as a separate process on a given ROS domain."""

    def __init__(self, cmd: list[str], domain_id: int, log_path: Path, env: dict | None = None, name: str | None = None):
        self.cmd = cmd
        self.name = name or Path(cmd[-1]).name
        self.log_path = Path(log_path)
        self._shm_before = _fastdds_shm_files()
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(cmd, env=ros_env(domain_id, env), stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    @classmethod
    def module(cls, module: str, domain_id: int, log_dir: Path, args: list[str] = (), **kw) -> "NodeProcess":
        """Start ``python -m module args...`` with this interpreter."""
        name = kw.pop("name", module.rsplit(".", 1)[-1])
        return cls([sys.executable, "-m", module, *args], domain_id, Path(log_dir) / f"{name}.log", name=name, **kw)

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def wait(self, timeout_s: float) -> int:
        return self.proc.wait(timeout=timeout_s)

    def stop(self, timeout_s: float = 5.0) -> int:
        """SIGINT (clean shutdown), then SIGTERM, then SIGKILL; returns the exit code."""
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
            if self.proc.poll() is not None:
                break
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                continue
        code = self.proc.wait()
        self._log.close()
        self._cleanup_shm()
        return code

    def kill(self) -> int:
        """SIGKILL at once (a crash, for fault-injection tests)."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        code = self.proc.wait()
        self._log.close()
        self._cleanup_shm()
        return code

    def _cleanup_shm(self):
        # A participant killed without shutting down leaves its shared-memory port files behind.
        leftovers = _fastdds_shm_files() - self._shm_before
        if leftovers:
            in_use = _open_shm_files()
            for name in leftovers - in_use:
                try:
                    os.unlink(f"/dev/shm/{name}")
                except OSError:
                    pass


class RosProbe:
    """An rclpy node inside the test process, on its own context and domain, spun in a background thread."""

    def __init__(self, domain_id: int, name: str = "test_probe", lean_executor: bool = False):
        """``lean_executor``: spin on ``egovla.executor.LeanExecutor``, as the project's nodes do (rclpy's
        ``SingleThreadedExecutor`` otherwise)."""
        os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
        os.environ.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
        import rclpy
        from rclpy.context import Context
        from rclpy.executors import SingleThreadedExecutor

        self._rclpy = rclpy
        self.context = Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = rclpy.create_node(name, context=self.context)
        if lean_executor:
            from egovla.executor import LeanExecutor

            self.executor = LeanExecutor(context=self.context)
        else:
            self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self):
        while not self._stop.is_set() and self.context.ok():
            self.executor.spin_once(timeout_sec=0.05)

    def collect(self, msg_type, topic: str, qos=10) -> list:
        """Subscribe and return a list that fills with every message received on ``topic``."""
        received: list = []
        self.node.create_subscription(msg_type, topic, received.append, qos)
        return received

    def wait_for_message(self, msg_type, topic: str, timeout_s: float = 10.0, qos=10):
        """The first message on ``topic`` within ``timeout_s``; TimeoutError names the topic otherwise."""
        received = self.collect(msg_type, topic, qos)
        if not wait_until(lambda: len(received) > 0, timeout_s):
            raise TimeoutError(f"no {msg_type.__name__} on {topic!r} within {timeout_s} s "
                               f"(domain {self.context.get_domain_id()})")
        return received[0]

    def close(self):
        self._stop.set()
        self._thread.join(timeout=2.0)
        self.executor.shutdown()
        self.node.destroy_node()
        self._rclpy.shutdown(context=self.context)


def wait_until(predicate, timeout_s: float, period_s: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(period_s)
    return bool(predicate())
