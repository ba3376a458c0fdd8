"""The nodes' endpoints carry no QoS event handlers; incompatible peers are still reported, once, from the graph."""

from __future__ import annotations

import pytest

from ros_harness import wait_until

pytestmark = pytest.mark.ros


@pytest.fixture
def contexts(ros_domain):
    """Two rclpy contexts on the test's domain: two DDS participants, as two processes would have (one participant
    refuses a second type on a topic)."""
    import rclpy

    both = [rclpy.Context(), rclpy.Context()]
    for ctx in both:
        rclpy.init(context=ctx, domain_id=ros_domain)
    yield both
    for ctx in both:
        rclpy.try_shutdown(context=ctx)


def test_incompatible_peers_are_reported_once_and_no_event_handlers_wait(contexts):
    from rclpy.node import Node
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import JointState
    from std_msgs.msg import String

    from egovla.nodes.common import EgoNode

    reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    best_effort = QoSProfile(depth=10, reliability=ReliabilityPolicy.BEST_EFFORT)
    latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    context, elsewhere = contexts
    ours = EgoNode("ours", context=context)
    peers = Node("peers", context=elsewhere)
    try:
        ours.create_subscription(JointState, "/joint_states", lambda m: None, reliable)
        ours.create_subscription(String, "/egovla/instruction", lambda m: None, latched)
        ours.create_publisher(JointState, "/joint_command", reliable)
        # rclpy's plain node: two default event handlers per endpoint (its /parameter_events publisher and this
        # subscription), in every wait of the executor
        plain = Node("plain", context=context)
        plain.create_subscription(JointState, "/elsewhere", lambda m: None, reliable)
        assert len(list(plain.waitables)) == 4
        plain.destroy_node()
        assert list(ours.waitables) == []

        assert ours.audit_qos() == []  # nothing else on the graph yet
        peers.create_publisher(JointState, "/joint_states", best_effort)  # offers less than ours requests
        peers.create_publisher(String, "/egovla/instruction", latched)  # fine
        peers.create_subscription(String, "/joint_command", lambda m: None, reliable)  # another type
        fine = Node("fine", context=context)  # (a participant takes one type per topic)
        fine.create_subscription(JointState, "/joint_command", lambda m: None, 10)  # rclpy's defaults: compatible
        assert wait_until(lambda: sorted(i.node_name for t in ("/joint_states", "/egovla/instruction")
                                         for i in ours.get_publishers_info_by_topic(t))
                          + sorted(i.node_name for i in ours.get_subscriptions_info_by_topic("/joint_command"))
                          == ["peers", "peers", "fine", "peers"], 10.0)
        problems = ours.audit_qos()
        assert len(problems) == 2, problems
        assert problems[0] == ("publisher of /joint_states in node '/peers' has an incompatible QoS, no messages "
                               "pass: a best-effort publisher and a reliable subscription")
        assert problems[1] == ("subscription of /joint_command in node '/peers' uses type std_msgs/msg/String, "
                               "this node sensor_msgs/msg/JointState")
        assert ours.audit_qos() == []  # each peer once
        # a new peer is checked when it appears
        again = Node("again", context=elsewhere)
        again.create_publisher(String, "/egovla/instruction", reliable)  # volatile, for a transient-local reader
        assert wait_until(lambda: "again" in {i.node_name for i in
                                              ours.get_publishers_info_by_topic("/egovla/instruction")}, 10.0)
        assert ours.audit_qos() == ["publisher of /egovla/instruction in node '/again' has an incompatible QoS, no "
                                    "messages pass: a volatile publisher and a transient-local subscription"]
        again.destroy_node()
        fine.destroy_node()
    finally:
        peers.destroy_node()
        ours.destroy_node()
