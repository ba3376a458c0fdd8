"""A node for launcher tests: says hello on /chatter, then exits with ``exit_code`` after ``after_s`` seconds
(never, if ``after_s`` < 0)."""

import sys

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from std_msgs.msg import String


def main() -> int:
    rclpy.init()
    node = Node("exit_node")
    after = node.declare_parameter("after_s", -1.0).value
    code = node.declare_parameter("exit_code", 0).value
    pub = node.create_publisher(String, "chatter", 10)
    node.create_timer(0.1, lambda: pub.publish(String(data=f"hello from {node.get_name()}")))
    node.get_logger().info(f"up; exiting with {code} after {after} s")
    try:
        if after >= 0:
            end = node.get_clock().now().nanoseconds + int(after * 1e9)
            while rclpy.ok() and node.get_clock().now().nanoseconds < end:
                rclpy.spin_once(node, timeout_sec=0.05)
            node.get_logger().info("exiting")
            return code
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        node.get_logger().info("interrupted, shutting down cleanly")
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
