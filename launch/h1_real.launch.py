"""The policy on the real Unitree H1 (or H1-2) with two Inspire hands.

The nodes and parameters come from config/graphs/h1_real.yaml, which `egovla-launch h1_real` (pip-only machines, no
ros2 launch) reads too.
"""

from egovla.launch_support import graph_launch_description


def generate_launch_description():
    return graph_launch_description("h1_real")
