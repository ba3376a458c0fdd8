"""The action decoder the controller nodes share: hand model and retargeting network from parameters."""

from __future__ import annotations

from rclpy.node import Node

from egovla_training.hands import load_hand_model
from egovla_training.retarget.decode import ActionDecoder
from egovla_training.retarget.mlp import SHIPPED_STANDIN_NET, load_retarget_net

from .common import NodeConfigError, declare


def build_decoder(node: Node, ik_config=None) -> ActionDecoder:
    kind = declare(node, "hand_model", "auto", "hand model: auto (MANO if its files are found, else the open "
                   "stand-in), mano or standin", lambda v: v in ("auto", "mano", "standin"),
                   "must be auto, mano or standin")
    net_dir = declare(node, "retarget_net", "", "folder of the retargeting MLP (safetensors); empty: the one "
                      "shipped for the stand-in hand")
    hands = {s: load_hand_model(s, kind=kind) for s in ("left", "right")}
    folder = net_dir or str(SHIPPED_STANDIN_NET)
    try:
        net, _ = load_retarget_net(folder, hand_model_id=hands["left"].model_id)
    except (FileNotFoundError, ValueError) as e:
        raise NodeConfigError(f"retarget_net {folder}: {e}") from None
    return ActionDecoder(hands, net, node.robot, ik_config=ik_config)
