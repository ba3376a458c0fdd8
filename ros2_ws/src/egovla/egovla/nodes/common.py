"""What every node of the stack shares: declared parameters with descriptions, one clear error at startup, clean
shutdown, wall-clock time for watchdogs."""

from __future__ import annotations

import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable

import rclpy
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.clock import Clock, ClockType
from rclpy.event_handler import PublisherEventCallbacks, SubscriptionEventCallbacks
from rclpy.exceptions import ParameterException
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.publisher import Publisher
from rclpy.qos import DurabilityPolicy, LivelinessPolicy, ReliabilityPolicy


class NodeConfigError(ValueError):
    """A parameter value the node cannot run with; the node exits with code 2 and this one line."""


# Queue depth of the publishers whose messages the recorder keeps (and of its own subscriptions): a reliable writer
# drops a sample a reader has not acknowledged once this many newer ones are queued, so it is how far the recorder
# may lag (a lockstep bridge runs at 100+ ticks/s) before a bag loses messages. A reader that keeps up gets every
# message at once whatever the depth.
RECORDED_DEPTH = 100


EXECUTOR_ENV = "EGOVLA_EXECUTOR"  # "rclpy": nodes started by ``run`` spin on rclpy's SingleThreadedExecutor

# How often (wall time) a node checks the peers of its publishers and subscriptions on the ROS graph.
QOS_AUDIT_PERIOD_S = 2.0
UNKNOWN_NODE_NAME = "_NODE_NAME_UNKNOWN_"  # what the graph reports for an endpoint whose node it has not seen yet


def type_name(msg_type) -> str:
    """``sensor_msgs/msg/JointState`` for the class ``sensor_msgs.msg.JointState``, as the ROS graph names types."""
    return f"{msg_type.__module__.split('.')[0]}/msg/{msg_type.__name__}"


def _finite_ns(duration) -> int | None:
    """A QoS duration in ns, None for "not set": a profile made here says 0 (the default), the graph says the
    largest int64 (infinite)."""
    ns = duration.nanoseconds
    return None if ns <= 0 or ns >= 2 ** 63 - 1 else ns


def qos_incompatibility(offered, requested) -> str | None:
    """Why a publisher offering ``offered`` cannot serve a subscription requesting ``requested`` (DDS's
    request-offered rules for reliability, durability, deadline, liveliness), or None if it can. rcl's own check
    misreads the profiles the graph reports (their unset durations are infinite, not "default")."""
    if requested.reliability == ReliabilityPolicy.RELIABLE and offered.reliability == ReliabilityPolicy.BEST_EFFORT:
        return "a best-effort publisher and a reliable subscription"
    if requested.durability == DurabilityPolicy.TRANSIENT_LOCAL and offered.durability == DurabilityPolicy.VOLATILE:
        return "a volatile publisher and a transient-local subscription"
    want, have = _finite_ns(requested.deadline), _finite_ns(offered.deadline)
    if want is not None and (have is None or have > want):
        return "the subscription's deadline is shorter than the publisher's"
    if requested.liveliness == LivelinessPolicy.MANUAL_BY_TOPIC and offered.liveliness == LivelinessPolicy.AUTOMATIC:
        return "a publisher with automatic liveliness and a subscription asking for manual-by-topic"
    want, have = _finite_ns(requested.liveliness_lease_duration), _finite_ns(offered.liveliness_lease_duration)
    if want is not None and (have is None or have > want):
        return "the subscription's liveliness lease is shorter than the publisher's"
    return None


class EgoNode(Node):
    """A node of the stack: rclpy's ``Node`` whose publishers and subscriptions carry no QoS event handlers.

    rclpy gives every publisher and subscription two default event handlers (incompatible QoS, incompatible type)
    that only log a warning. Each is a waitable the executor adds to its wait set and polls from Python on every
    spin iteration: the control container's 24 made one iteration cost 352-422 us instead of 205-304 us
    (``bench_ros.spin_iteration_cost``, 3 runs each). Instead, each node checks the peers of its endpoints on the
    ROS graph every ``QOS_AUDIT_PERIOD_S`` of wall time and reports each incompatible peer once (``audit_qos``).
    """

    # True: rclpy's default event handlers as well (for comparison; ``bench_ros.spin_iteration_cost`` measures both)
    rclpy_event_handlers = False

    def __init__(self, node_name: str, **kwargs):
        self._endpoints: list = []  # our publishers and subscriptions (rclpy's /parameter_events one too)
        self._audited: set = set()  # (publishing, our topic, peer gid) already checked
        self._unnamed: set = set()  # peers seen once before the graph had their node's name
        super().__init__(node_name, **kwargs)
        self.create_timer(QOS_AUDIT_PERIOD_S, self.audit_qos, clock=Clock(clock_type=ClockType.STEADY_TIME))

    def create_publisher(self, msg_type, topic, qos_profile, **kwargs):
        kwargs.setdefault("event_callbacks", PublisherEventCallbacks(use_default_callbacks=self.rclpy_event_handlers))
        publisher = super().create_publisher(msg_type, topic, qos_profile, **kwargs)
        self._endpoints.append(publisher)
        return publisher

    def create_subscription(self, msg_type, topic, callback, qos_profile, **kwargs):
        kwargs.setdefault("event_callbacks",
                          SubscriptionEventCallbacks(use_default_callbacks=self.rclpy_event_handlers))
        subscription = super().create_subscription(msg_type, topic, callback, qos_profile, **kwargs)
        self._endpoints.append(subscription)
        return subscription

    def audit_qos(self) -> list[str]:
        """Check the peers on the graph that each endpoint has not met yet; warn about (and return) the problems:
        another message type, or a QoS that makes the pair exchange nothing (reliability, durability, ...)."""
        problems = []
        for ours in list(self._endpoints):
            publishing = isinstance(ours, Publisher)
            topic = ours.topic_name
            peers = (self.get_subscriptions_info_by_topic(topic) if publishing
                     else self.get_publishers_info_by_topic(topic))
            for peer in peers:
                key = (publishing, topic, bytes(peer.endpoint_gid))
                if key in self._audited:
                    continue
                named = peer.node_name != UNKNOWN_NODE_NAME
                if not named and key not in self._unnamed:
                    self._unnamed.add(key)  # discovery names the node a little after its endpoints: next audit
                    continue
                self._audited.add(key)
                self._unnamed.discard(key)
                node = f"'{peer.node_namespace.rstrip('/')}/{peer.node_name}'" if named else "an unnamed participant"
                who = f"{'subscription' if publishing else 'publisher'} of {topic} in node {node}"
                if peer.topic_type != type_name(ours.msg_type):
                    problem = f"{who} uses type {peer.topic_type}, this node {type_name(ours.msg_type)}"
                else:
                    offered, requested = ((ours.qos_profile, peer.qos_profile) if publishing
                                          else (peer.qos_profile, ours.qos_profile))
                    reason = qos_incompatibility(offered, requested)
                    if reason is None:
                        continue
                    problem = f"{who} has an incompatible QoS, no messages pass: {reason}"
                problems.append(problem)
                self.get_logger().warning(problem)
        return problems


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
    one line on stderr, exit 2), spin until Ctrl-C. The executor is ``egovla.executor.LeanExecutor``; with the
    environment variable ``EGOVLA_EXECUTOR=rclpy``, rclpy's ``SingleThreadedExecutor``."""
    from rclpy.executors import SingleThreadedExecutor

    from ..executor import LeanExecutor

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
    executor = SingleThreadedExecutor() if os.environ.get(EXECUTOR_ENV) == "rclpy" else LeanExecutor()
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
