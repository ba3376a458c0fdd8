"""``egovla-description``: export the generated URDF/MJCF, or print the robot's joint table."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .mjcf import robot_mjcf
from .robot import DEFAULT_ROBOT, RobotDescriptionError, load_robot
from .urdf import robot_urdf


def _export(args) -> int:
    robot = load_robot(args.robot)
    fixed = None if args.fixed is None else [n for n in args.fixed.split(",") if n]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    urdf = out / f"{robot.name}.urdf"
    mjcf = out / f"{robot.name}.xml"
    urdf.write_text(robot_urdf(robot, fixed_joints=fixed))
    mjcf.write_text(robot_mjcf(robot, fixed_joints=fixed, hand_mimic=args.hand_mimic))
    print(f"wrote {urdf}")
    print(f"wrote {mjcf}")
    return 0


def _info(args) -> int:
    robot = load_robot(args.robot)
    print(f"{robot.name}: {len(robot.links)} links, {len(robot.joints)} joints "
          f"({len(robot.movable_joint_names)} movable, {len(robot.mimic_joint_names)} mimic); root {robot.root_link}")
    print(f"fixed in the benchmark: {', '.join(robot.fixed_in_benchmark) or 'none'}")
    print(f"{'joint':34s} {'group':10s} {'lower':>8s} {'upper':>8s} {'effort':>7s} {'vel':>6s}  mimic")
    for j in robot.joints:
        if j.is_fixed:
            continue
        mimic = f"{j.mimic.multiplier:g} x {j.mimic.joint}" if j.mimic else ""
        print(f"{j.name:34s} {robot.group_of(j.name) or '-':10s} {j.limit.lower:8.3f} {j.limit.upper:8.3f} "
              f"{j.limit.effort:7.1f} {j.limit.velocity:6.1f}  {mimic}")
    cam = robot.head_camera
    k = cam.intrinsics
    print(f"head camera: {cam.parent_link} + {cam.xyz}, pitched {cam.pitch_down_deg} deg down, "
          f"{k.width}x{k.height}, fx={k.fx} fy={k.fy} cx={k.cx} cy={k.cy}")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="egovla-description",
        description="Robot description tools: export the URDF and MJCF generated from the robot table, or print "
                    "its joints, limits and head camera.")
    parser.add_argument("--robot", default=DEFAULT_ROBOT, help="robot name or path to a robot table (.yaml)")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("export", help="write <robot>.urdf and <robot>.xml (MJCF) into a folder")
    p.add_argument("--out", required=True, help="output folder (created if missing)")
    p.add_argument("--fixed", default=None,
                   help="comma-separated joints to make fixed (default: the benchmark's, i.e. the torso; '' for none)")
    p.add_argument("--hand-mimic", choices=["equality", "independent"], default="equality",
                   help="MJCF mimic joints: equality-coupled (real hand) or independently actuated (benchmark asset)")
    p.set_defaults(func=_export)
    p = sub.add_parser("info", help="print the joint table and the head camera")
    p.set_defaults(func=_info)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (RobotDescriptionError, ValueError, KeyError, OSError) as e:
        print(f"egovla-description: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
