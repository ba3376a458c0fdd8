"""Retargeting between the robot hand and the human hand model, both ways."""

from .fit import FitConfig, FitResult, fit_hand_to_robot

__all__ = ["FitConfig", "FitResult", "fit_hand_to_robot"]
