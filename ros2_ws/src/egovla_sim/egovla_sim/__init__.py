"""MuJoCo simulation of the EgoVLA benchmark robot (H1 + two Inspire hands)."""
