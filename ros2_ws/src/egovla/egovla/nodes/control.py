"""Control container: the smoother, arm IK and hand retargeting nodes in one process, steps handed over in-process.

Each smoothed step goes from the smoother to the two controllers as a function call instead of a DDS message, and
the three nodes share one executor. That takes one inter-process hop (about 0.6 ms median and 1 ms at p99 on two
cores, more with the other nodes competing for them) and two processes off the path from an action chunk to
``/joint_command``. The nodes are otherwise the ones of ``egovla.nodes.smoother``, ``egovla.nodes.arm_ik`` and
``egovla.nodes.hand_retarget``: the same names, parameters, topics, safety layer and watchdogs, and the smoother
still publishes ``/egovla/action`` for observers (recorder, plots). The controllers subscribe to neither
``/egovla/action`` nor ``/egovla/action_chunk``: the smoother tells them of each chunk's arrival, their policy
heartbeat with ``policy_heartbeat:=chunk``. The hand retargeting node subscribes to nothing: the arm IK node hands it
each joint state, camera heartbeat and task status it receives (one take and one deserialization per message
instead of two, and fewer entities for the executor to wait on).

Parameters are per node, as for any process hosting several nodes: a parameters file with one section per node
name (``smoother:``, ``arm_ik:``, ``hand_retarget:``), or ``--ros-args -p arm_ik:ik_mode:=track``. A graph entry
with ``components`` (``egovla.graph``) writes that file.

    python -m egovla.nodes.control --ros-args --params-file control.params.yaml
"""

from __future__ import annotations

import sys

from .arm_ik import ArmIKNode
from .common import run
from .hand_retarget import HandRetargetNode
from .smoother import SmootherNode

COMPONENTS = ("smoother", "arm_ik", "hand_retarget")


def build_nodes() -> list:
    """The three nodes, wired: the smoother's steps, and the arrival of each chunk (the policy's heartbeat), go
    straight to both controllers; the arm IK node's joint states, camera heartbeats and task statuses go to the hand
    retargeting node too."""
    nodes = []
    try:
        for factory in (SmootherNode, lambda: ArmIKNode(subscribe_action=False),
                        lambda: HandRetargetNode(subscribe_action=False, subscribe_inputs=False)):
            nodes.append(factory())
    except Exception:
        for node in nodes:
            node.destroy_node()
        raise
    smoother, arm, hand = nodes
    smoother.step_listeners += [arm.on_step, hand.on_step]
    arm.followers.append(hand)  # one subscription each to joint states, camera heartbeat and task status
    hand.clock_node = arm  # and the time they arrived at
    smoother.chunk_listeners += [arm.on_chunk_arrival, hand.on_chunk_arrival]
    return nodes


def main(args=None) -> int:
    return run(build_nodes, "control", args)


if __name__ == "__main__":
    sys.exit(main())
