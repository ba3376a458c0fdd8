"""Real rclpy processes over Fast DDS: the description publisher, domain isolation, clean and failed exits."""

import sys
import time

import pinocchio as pin
import pytest
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import String

from ros_harness import NodeProcess, RosProbe, allocate_domain_id, release_domain_id, wait_until

pytestmark = pytest.mark.ros
LATCHED = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE)


def test_description_publisher_serves_the_urdf_to_a_late_subscriber(ros_domain, ros_probe, tmp_path, robot):
    node = NodeProcess.module("egovla.robot_description_publisher", ros_domain, tmp_path)
    try:
        assert wait_until(lambda: "published robot_description" in node.log(), 20.0), node.log()
        time.sleep(0.2)  # the probe subscribes after the single publication: transient-local must deliver it
        msg = ros_probe.wait_for_message(String, "/robot_description", timeout_s=10.0, qos=LATCHED)
        model = pin.buildModelFromXML(msg.data)
        assert model.nq == 50  # fixed torso, as in the benchmark
        assert model.existFrame("head_camera_optical_frame") and model.existFrame("R_pinky_tip")
    finally:
        assert node.stop() == 0, node.log()


def test_nodes_on_another_domain_are_not_heard(ros_domain, tmp_path):
    other = allocate_domain_id()
    probe = RosProbe(other)
    node = NodeProcess.module("egovla.robot_description_publisher", ros_domain, tmp_path)
    try:
        assert wait_until(lambda: "published robot_description" in node.log(), 20.0), node.log()
        with pytest.raises(TimeoutError, match="no String on '/robot_description'"):
            probe.wait_for_message(String, "/robot_description", timeout_s=1.5, qos=LATCHED)
    finally:
        node.stop()
        probe.close()
        release_domain_id(other)


def test_a_bad_parameter_exits_with_one_clear_line(ros_domain, tmp_path):
    node = NodeProcess([sys.executable, "-m", "egovla.robot_description_publisher", "--ros-args", "-p",
                        "robot:=no_such_robot"], ros_domain, tmp_path / "bad.log")
    code = node.wait(timeout_s=20.0)
    node.stop()
    assert code == 2
    assert "robot_description_publisher: error: unknown robot 'no_such_robot'" in node.log()


def test_free_torso_parameter_publishes_the_full_robot(ros_domain, ros_probe, tmp_path):
    node = NodeProcess.module("egovla.robot_description_publisher", ros_domain, tmp_path,
                              args=["--ros-args", "-p", "free_torso:=true"])
    try:
        msg = ros_probe.wait_for_message(String, "/robot_description", timeout_s=20.0, qos=LATCHED)
        assert pin.buildModelFromXML(msg.data).nq == 51
    finally:
        node.stop()


def test_killed_node_is_detected_and_its_shared_memory_removed(ros_domain, tmp_path):
    node = NodeProcess.module("egovla.robot_description_publisher", ros_domain, tmp_path)
    assert wait_until(lambda: "published robot_description" in node.log(), 20.0), node.log()
    assert node.alive
    code = node.kill()
    assert code == -9 and not node.alive
    import os

    leftovers = [n for n in os.listdir("/dev/shm") if "fastdds" in n] if os.path.isdir("/dev/shm") else []
    # Whatever remains belongs to live participants (e.g. another test's probe), never to the dead node alone.
    from ros_harness import _open_shm_files

    assert set(leftovers) <= _open_shm_files() | set(node._shm_before)
