"""egovla.executor.LeanExecutor: what rclpy's SingleThreadedExecutor does (subscriptions, raw ones, timers, guard
conditions, services and clients, coroutine callbacks, tasks, futures, entities that come and go), in one process."""

import time

import pytest

rclpy = pytest.importorskip("rclpy")

from ros_harness import allocate_domain_id, release_domain_id  # noqa: E402


@pytest.fixture
def context():
    from rclpy.context import Context

    domain = allocate_domain_id()
    ctx = Context()
    rclpy.init(context=ctx, domain_id=domain)
    try:
        yield ctx
    finally:
        rclpy.try_shutdown(context=ctx)
        release_domain_id(domain)


def _spin_until(executor, predicate, timeout_s=10.0):
    deadline = time.monotonic() + timeout_s
    while not predicate() and time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.05)
    return predicate()


def _executor(kind, context):
    from rclpy.executors import SingleThreadedExecutor

    from egovla.executor import LeanExecutor

    return (LeanExecutor if kind == "lean" else SingleThreadedExecutor)(context=context)


@pytest.mark.parametrize("kind", ["lean", "rclpy"])
def test_messages_timers_guards_and_services(context, kind):
    """The same test passes on rclpy's executor: the two behave alike."""
    from rclpy.node import Node
    from rclpy.timer import TimerInfo
    from std_msgs.msg import Int32
    from std_srvs.srv import SetBool

    node = Node("lean_test", context=context)
    executor = _executor(kind, context)
    executor.add_node(node)
    got, raw, ticks, infos, guarded = [], [], [], [], []
    node.create_subscription(Int32, "numbers", lambda m: got.append(m.data), 100)
    node.create_subscription(Int32, "numbers", raw.append, 100, raw=True)
    pub = node.create_publisher(Int32, "numbers", 100)
    node.create_timer(0.01, lambda: ticks.append(time.monotonic()))

    def with_info(info: TimerInfo):
        infos.append(info)

    node.create_timer(0.02, with_info)
    guard = node.create_guard_condition(lambda: guarded.append(True))
    node.create_service(SetBool, "flip", lambda req, res: setattr(res, "message", f"got {req.data}") or res)
    client = node.create_client(SetBool, "flip")
    assert _spin_until(executor, lambda: pub.get_subscription_count() == 2 and client.service_is_ready())
    for i in range(50):
        pub.publish(Int32(data=i))
    guard.trigger()
    future = client.call_async(SetBool.Request(data=True))
    executor.spin_until_future_complete(future, timeout_sec=10.0)
    assert future.done() and future.result().message == "got True"
    assert _spin_until(executor, lambda: len(got) == 50 and len(raw) == 50 and len(ticks) >= 20 and len(infos) >= 5)
    assert got == list(range(50))  # in order, none lost
    assert all(isinstance(b, bytes) and len(b) == 8 for b in raw)  # 4-byte CDR header + int32
    assert guarded == [True]
    assert all(isinstance(i, TimerInfo) and i.actual_call_time.nanoseconds > 0 for i in infos)
    periods = [b - a for a, b in zip(ticks, ticks[1:])]
    assert 0.005 < sorted(periods)[len(periods) // 2] < 0.03  # a 100 Hz timer
    executor.shutdown()
    node.destroy_node()


def test_coroutines_tasks_and_exceptions(context):
    from rclpy.node import Node
    from rclpy.task import Future
    from std_msgs.msg import Int32

    from egovla.executor import LeanExecutor

    node = Node("lean_async", context=context)
    executor = LeanExecutor(context=context)
    executor.add_node(node)
    gate, order = Future(), []

    async def on_message(msg):
        order.append(("received", msg.data))
        value = await gate  # suspends until the timer below completes the future
        order.append(("resumed", msg.data, value))

    node.create_subscription(Int32, "async_numbers", on_message, 10)
    pub = node.create_publisher(Int32, "async_numbers", 10)
    assert _spin_until(executor, lambda: pub.get_subscription_count() == 1)
    pub.publish(Int32(data=7))
    assert _spin_until(executor, lambda: order == [("received", 7)])
    timer = node.create_timer(0.01, lambda: gate.done() or gate.set_result("open"))
    assert _spin_until(executor, lambda: len(order) == 2)
    assert order[1] == ("resumed", 7, "open")
    node.destroy_timer(timer)
    task = executor.create_task(lambda: 41 + 1)
    assert _spin_until(executor, task.done) and task.result() == 42

    def broken():
        raise ValueError("callback failed")

    node.create_timer(0.01, broken)
    with pytest.raises(ValueError, match="callback failed"):  # as rclpy's executor: out of spin_once
        for _ in range(100):
            executor.spin_once(timeout_sec=0.05)
    executor.shutdown()
    node.destroy_node()


def test_entities_created_and_destroyed_while_spinning(context):
    """A subscription destroyed from a callback gets nothing more; one created from a callback gets what follows;
    a node removed from the executor is no longer served."""
    from rclpy.node import Node
    from std_msgs.msg import Int32

    from egovla.executor import LeanExecutor

    node, other = Node("lean_churn", context=context), Node("lean_other", context=context)
    executor = LeanExecutor(context=context)
    executor.add_node(node)
    executor.add_node(other)
    first, second, others = [], [], []
    state = {}

    def on_first(msg):
        first.append(msg.data)
        if msg.data == 2:  # swap subscriptions from inside a callback
            node.destroy_subscription(state["first"])
            state["second"] = node.create_subscription(Int32, "churn", lambda m: second.append(m.data), 10)

    state["first"] = node.create_subscription(Int32, "churn", on_first, 10)
    other.create_subscription(Int32, "churn", lambda m: others.append(m.data), 10)
    pub = node.create_publisher(Int32, "churn", 10)
    assert _spin_until(executor, lambda: pub.get_subscription_count() == 2)
    for i in range(3):
        pub.publish(Int32(data=i))
        assert _spin_until(executor, lambda: i in first and i in others)
    assert _spin_until(executor, lambda: pub.get_subscription_count() == 2)  # the new one is matched
    for i in range(3, 6):
        pub.publish(Int32(data=i))
    assert _spin_until(executor, lambda: second == [3, 4, 5])
    assert first == [0, 1, 2]
    executor.remove_node(other)
    seen = len(others)
    pub.publish(Int32(data=6))
    assert _spin_until(executor, lambda: second[-1] == 6)
    executor.spin_once(timeout_sec=0.2)
    assert len(others) == seen  # removed: not served any more
    executor.shutdown()
    for n in (node, other):
        n.destroy_node()
