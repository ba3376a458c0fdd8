"""ROS 2 nodes of the EgoVLA stack. Nodes are thin: the logic lives in egovla_description, egovla_sim and
egovla_training, which never import rclpy."""
