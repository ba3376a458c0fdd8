"""Evaluate a policy on a benchmark task through the whole node graph (sim bridge, policy, smoother, IK, hand
retargeting, evaluator, optional recorder).

    ros2 launch egovla sim_eval.launch.py task:=close_drawer split:=seen episodes:=3 policy:=scripted sim:=mujoco

The nodes and parameters come from config/graphs/sim_eval.yaml, which `egovla-launch sim_eval` (pip-only machines,
no ros2 launch) reads too.
"""

from egovla.launch_support import graph_launch_description


def generate_launch_description():
    return graph_launch_description("sim_eval")
