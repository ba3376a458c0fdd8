"""Offline training for the EgoVLA stack (no ROS imports).

This package grows the model, the hand model and action space, the dataset format, the losses and the training
recipes (see the project README). It builds on ``egovla_description`` for robot kinematics and geometry.
"""

__version__ = "0.1.0"
