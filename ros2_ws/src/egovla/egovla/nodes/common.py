"""What every node of the stack shares: declared parameters with descriptions, one clear error at startup, clean
shutdown, wall-clock time for watchdogs."""

from __future__ import annotations

import math
import signal
import sys
import threading
import time
from collections.abc import Callable

import rclpy
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.exceptions import ParameterException
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node


class NodeConfigError(ValueError):
    """A parameter value the node cannot run with; the node exits with code 2 and this one line."""


# Queue depth of the publishers whose messages the recorder keeps (and of its own subscriptions): a reliable writer
# drops a sample a reader has not acknowledged once this many newer ones are queued, so it is how far the recorder
# may lag (a lockstep bridge runs at 100+ ticks/s) before a bag loses messages. A reader that keeps up gets every
# message at once whatever the depth.
RECORDED_DEPTH = 100


def declare(node: Node, name: str, default, description: str, check: Callable | None = None, problem: str = ""):
    """Declare ``name`` with a description and return its value; ``check(value)`` False -> ``NodeConfigError``."""
    value = node.declare_parameter(name, default, ParameterDescriptor(description=description)).value
    if check is not None and not check(value):
        raise NodeConfigError(f"parameter {name}={value!r}: {problem or 'invalid value'}")
    return value


class ThrottledLog:
    """A node's logger whose ``throttle_duration_sec`` costs a dictionary lookup when the line is suppressed.

    rclpy's own throttle first identifies the calling line through ``inspect`` (file lookups on every call, 0.33 ms
    per line measured here), and only then decides whether to print: a safety layer that reports a velocity cap on
    every tick paid that twice per control step. Here the call site is read from the caller's frame and the rclpy
    logger is only called for lines that are printed. Throttling is per call site and wall time, as rclpy's."""

    def __init__(self, logger):
        self._logger = logger
        self._last: dict = {}

    def _due(self, kwargs: dict) -> bool:
        """Whether the line of the caller's caller is printed now (removes ``throttle_duration_sec`` from
        ``kwargs``)."""
        period = kwargs.pop("throttle_duration_sec", None)
        if period is None:
            return True
        caller = sys._getframe(2)
        site = (caller.f_code, caller.f_lineno)
        now = time.monotonic()
        if now - self._last.get(site, -math.inf) < period:
            return False
        self._last[site] = now
        return True

    # One rclpy call per level, each on its own line: rclpy keys its per-call-site state (a fixed severity, among
    # others) by the line that calls it, and refuses a second severity from one line.
    def debug(self, message: str, **kwargs) -> bool:
        return self._due(kwargs) and self._logger.debug(message, **kwargs)

    def info(self, message: str, **kwargs) -> bool:
        return self._due(kwargs) and self._logger.info(message, **kwargs)

    def warning(self, message: str, **kwargs) -> bool:
        return self._due(kwargs) and self._logger.warning(message, **kwargs)

    warn = warning  # the same line: one severity

    def error(self, message: str, **kwargs) -> bool:
        return self._due(kwargs) and self._logger.error(message, **kwargs)

    def fatal(self, message: str, **kwargs) -> bool:
        return self._due(kwargs) and self._logger.fatal(message, **kwargs)


def throttled(node: Node) -> ThrottledLog:
    """The node's ``ThrottledLog`` (made on first use)."""
    try:
        return node._throttled_log
    except AttributeError:
        node._throttled_log = ThrottledLog(node.get_logger())
        return node._throttled_log


def monotonic_s() -> float:
    """Wall time for watchdogs: sim time stands still when the simulator waits, so silence is measured in wall time."""
    return time.monotonic()


class _Interrupts:
    """Whether Ctrl-C (SIGINT) has reached this process: Python's own KeyboardInterrupt, remembered.

    rclpy chains to the Python handler from its own, so installing this one before ``rclpy.init`` keeps both."""

    def __init__(self):
        self.count = 0

    def install(self) -> bool:
        if threading.current_thread() is not threading.main_thread() or \
                signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
            return False  # not ours to replace (a thread, or an application's own handler)
        signal.signal(signal.SIGINT, self._on_sigint)
        return True

    def _on_sigint(self, signum, frame):
        self.count += 1
        raise KeyboardInterrupt


def run(node_factory: Callable[[], Node | list[Node]], name: str, args=None) -> int:
    """rclpy.init, build the node -- or the nodes of one process, spun by one executor -- (configuration errors ->
    one line on stderr, exit 2), spin until Ctrl-C."""
    from rclpy.executors import SingleThreadedExecutor

    interrupts = _Interrupts()
    interrupts.install()
    rclpy.init(args=args)
    try:
        built = node_factory()
    except (NodeConfigError, ValueError, FileNotFoundError, KeyError, ParameterException) as e:
        print(f"{name}: error: {e}", file=sys.stderr, flush=True)
        rclpy.try_shutdown()
        return 2
    nodes = built if isinstance(built, list) else [built]
    executor = SingleThreadedExecutor()
    for node in nodes:
        executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except RuntimeError:
        # Ctrl-C raises KeyboardInterrupt wherever Python code runs next. Inside the conversion of a message the
        # executor is taking, the binding reports it as a RuntimeError ("Unable to convert call argument"), and
        # rclpy's own signal thread may not have shut the context down yet: either sign means shutdown. Anything
        # else is a real error.
        if rclpy.ok() and not interrupts.count:
            raise
    finally:
        executor.shutdown()
        for node in nodes:
            node.destroy_node()
        rclpy.try_shutdown()
    return 0
