"""The nodes' throttled logging: rclpy's semantics (once per period per call site), without its per-call cost."""


from egovla.nodes import common
from egovla.nodes.common import ThrottledLog


class _Recorder:
    def __init__(self):
        self.calls = []

    def __getattr__(self, level):
        return lambda message, **kw: self.calls.append((level, message, kw)) or True


def test_once_per_period_per_call_site(monkeypatch):
    now = [100.0]
    monkeypatch.setattr(common.time, "monotonic", lambda: now[0])
    rec = _Recorder()
    log = ThrottledLog(rec)

    def site_a(i):
        return log.warn(f"a {i}", throttle_duration_sec=1.0)

    def site_b(i):
        return log.error(f"b {i}", throttle_duration_sec=1.0)

    printed = [site_a(i) for i in range(5)] + [site_b(0)]
    assert printed == [True, False, False, False, False, True]
    now[0] += 0.99
    assert not site_a(5)
    now[0] += 0.02  # 1.01 s after the first line
    assert site_a(6)
    assert log.info("not throttled") and log.info("not throttled")
    # forwarded without the throttle argument, warn as rclpy's (non-deprecated) warning
    assert rec.calls == [("warning", "a 0", {}), ("error", "b 0", {}), ("warning", "a 6", {}),
                         ("info", "not throttled", {}), ("info", "not throttled", {})]


def test_a_suppressed_line_costs_no_logger_call():
    """rclpy's throttle inspects the caller's source file on every call (about 0.45 ms here); a suppressed line here
    touches only a dictionary: measured as calls into the logger, not time."""
    rec = _Recorder()
    log = ThrottledLog(rec)
    for _ in range(1000):
        log.warning("velocity limited", throttle_duration_sec=60.0)
    assert len(rec.calls) == 1


def test_node_helper_returns_one_logger_per_node():
    class FakeNode:
        def get_logger(self):
            return _Recorder()

    node = FakeNode()
    assert common.throttled(node) is common.throttled(node)
    assert common.throttled(FakeNode()) is not common.throttled(node)


def test_every_severity_through_one_real_rclpy_logger():
    """rclpy keys per-call-site state by the line that calls it and refuses two severities from one line: each
    level must reach it from its own line (a node logging an error after a warning crashed otherwise)."""
    from rclpy.logging import get_logger

    log = ThrottledLog(get_logger("test_node_logging"))
    assert log.warning("a warning", throttle_duration_sec=1.0)
    assert log.error("then an error", throttle_duration_sec=1.0)
    assert log.warn("a warning again")
    assert log.info("some information", throttle_duration_sec=1.0)
    assert log.error("another error")
    assert log.fatal("a fatal line")
