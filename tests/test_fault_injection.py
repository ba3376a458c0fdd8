"""The whole graph free running on a 30 Hz simulator: egovla-tiny keeps up; killing the policy process makes the
arms hold within 0.2 s and the evaluator records the fault; a restarted policy takes control again."""

from __future__ import annotations

import json
import re
import signal
import time

import numpy as np
import pytest

from ros_harness import NodeProcess, wait_until

pytestmark = pytest.mark.ros
SIM = ["-p", "use_sim_time:=true"]


def _status(msg) -> dict:
    return {kv.key: kv.value for kv in msg.values}


def test_kill_the_policy_hold_record_the_fault_restart_and_resume(ros_domain, ros_probe, tmp_path, robot,
                                                                   tiny_checkpoint):
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
    from sensor_msgs.msg import JointState
    from trajectory_msgs.msg import JointTrajectory

    from egovla.msgs import stamp_to_ns

    def start(module, name, *params):
        args = ["--ros-args"]
        for p in params:
            args += ["-p", p]
        return NodeProcess.module(module, ros_domain, tmp_path, name=name, args=args)

    def start_policy(name):
        return start("egovla.nodes.policy", name, "use_sim_time:=true", "policy:=egovla",
                     f"checkpoint:={tiny_checkpoint}", "frames:=history", "threads:=1")

    out = tmp_path / "eval"
    chunks = ros_probe.collect(JointTrajectory, "/egovla/action_chunk")
    commands = ros_probe.collect(JointState, "/joint_command")
    statuses = ros_probe.collect(DiagnosticStatus, "/egovla/task_status")
    diagnostics = ros_probe.collect(DiagnosticArray, "/diagnostics")
    nodes = {
        "sim_bridge": start("egovla.nodes.sim_bridge", "sim_bridge", "task:=push_box", "mode:=free_running",
                            "image_width:=128", "image_height:=72"),
        "camera": start("egovla.nodes.camera", "camera", "use_sim_time:=true", "wait_for_status:=true"),
        "policy": start_policy("policy"),
        # smoother, arm IK and hand retargeting in the control container, as the shipped graphs run them
        "control": start("egovla.nodes.control", "control", "use_sim_time:=true", "smoother:trigger:=timer",
                         "arm_ik:policy_heartbeat:=chunk", "hand_retarget:policy_heartbeat:=chunk"),
        "evaluator": start("egovla.nodes.evaluator", "evaluator", "use_sim_time:=true", "task:=push_box",
                           # three episodes: on a slow machine the restarted policy's start-up (its first forward pass
                           # took 0.67 s in a CI run) used up the rest of the second one, and the stopped simulation
                           # left step 3 no ticks to see control resume in
                           "episodes:=3", f"out:={out}", "policy_label:=egovla", "tick_timeout_s:=60.0"),
    }

    def logs():
        return "\n".join(f"--- {k}\n{v.log()[-1500:]}" for k, v in nodes.items())

    def ticks_now():
        return int(_status(statuses[-1])["global_tick"]) if statuses else 0

    def arm_commands_since(i):
        return [m for m in commands[i:] if m.name and m.name[0].endswith("shoulder_pitch_joint")]

    def policy_work():  # (ticks inferred, seconds spent inferring) from the policy's latest report
        for array in reversed(diagnostics):
            for s in array.status:
                if s.name == "policy: inference":
                    v = _status(s)
                    return int(v["ticks"]), int(v["ticks"]) * float(v["mean_ms"]) * 1e-3
        return 0, 0.0

    def holds_since(i, node="arm_ik"):
        return [(d, s) for d in diagnostics[i:] for s in d.status
                if s.name == f"{node}: safety: state" and s.message.startswith("hold") and "policy silent" in s.message]

    try:
        # 1. Free running with egovla-tiny: the policy answers every tick its compute allows and never falls
        # behind (it answers the newest tick; a tick that arrives while it computes replaces the one waiting).
        assert wait_until(lambda: len(chunks) > 60 and len(arm_commands_since(0)) > 30, 120.0), logs()
        # measured inside the evaluator's first episode (bridge episode 1), away from its reset
        assert wait_until(lambda: int(_status(statuses[-1])["episode"]) >= 1 and
                          int(_status(statuses[-1])["tick"]) >= 30, 60.0), logs()
        t0, tick0, n0, work0 = time.monotonic(), ticks_now(), len(chunks), policy_work()
        time.sleep(3.0)
        wall, ticks, answered = time.monotonic() - t0, ticks_now() - tick0, len(chunks) - n0
        lag_s = (int(_status(statuses[-1])["stamp_ns"]) - stamp_to_ns(chunks[-1].header.stamp)) * 1e-9
        assert wait_until(lambda: policy_work()[0] > work0[0] + 30, 3.0), logs()  # its next report
        work1 = policy_work()
        per_tick_s = (work1[1] - work0[1]) / (work1[0] - work0[0])  # the policy's own inference time per tick
        can_answer = min(ticks, wall / per_tick_s)
        print(f"free running: {ticks / wall:.1f} ticks/s, {answered / wall:.1f} chunks/s ({answered} chunks for "
              f"{ticks} ticks); inference {per_tick_s * 1e3:.1f} ms per tick (room for {wall / per_tick_s:.0f}); "
              f"last chunk {lag_s * 1e3:.0f} ms behind the simulator")
        assert ticks / wall > 10.0, (ticks, wall)  # 30 on an idle machine
        # 83-90 of 90 ticks when inference takes 15-28 ms; where it takes longer than the 33 ms tick (a slower or
        # busier machine), about as many as it has time for: 55 where inference took 42.5 ms (room for 71; the
        # rest went to the node's own work and to waiting for the tick's frame history from a camera node that
        # shares the two cores). A policy that let every other tick pass would answer at most half of the ticks
        # (inference < tick), or 56 % of the room (inference 42 ms, a whole tick idle after each answer).
        assert answered >= 0.6 * can_answer, (answered, ticks, per_tick_s, logs())
        assert 0.0 <= lag_s <= 0.3, (lag_s, logs())

        # 2. Kill the policy process: within 0.2 s of sim time after its last chunk both controllers hold.
        i_diag, i_cmd = len(diagnostics), len(commands)
        nodes["policy"].proc.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        assert wait_until(lambda: holds_since(i_diag) and holds_since(i_diag, "hand_retarget"), 5.0), logs()
        last_stamp_s = stamp_to_ns(chunks[-1].header.stamp) * 1e-9  # the observation the last chunk answered
        for node in ("arm_ik", "hand_retarget"):
            array, status = holds_since(i_diag, node)[0]
            silence = float(re.search(r"policy silent for ([0-9.]+) s", status.message).group(1))
            after = stamp_to_ns(array.header.stamp) * 1e-9 - last_stamp_s
            print(f"{node}: '{status.message}', {after * 1e3:.0f} ms of sim time after the observation the last "
                  f"chunk answered, {(time.monotonic() - killed) * 1e3:.0f} ms wall after the kill (checked late)")
            # On the node's clock: 0.2 s of silence, noticed at the next 30 Hz timer tick. From outside: the last
            # chunk answered an observation at most a policy lag earlier.
            assert 0.2 <= silence <= 0.2 + 2 / 30 + 0.005, status.message
            assert after <= 1.0, after
        # Holding: the arm commands stop changing (the smoother may still replay stored chunks; they are ignored).
        time.sleep(0.5)
        i_hold = len(commands)
        assert wait_until(lambda: len(arm_commands_since(i_hold)) >= 5, 5.0), logs()
        held = np.array([m.position for m in arm_commands_since(i_hold)])
        assert np.abs(held - held[0]).max() < 1e-9, np.abs(held - held[0]).max()
        assert len(arm_commands_since(i_cmd)) > 0

        # 3. Restart the policy: chunks come again, the controllers leave the hold and follow the actions.
        n_chunks = len(chunks)
        nodes["policy_restarted"] = start_policy("policy_restarted")
        assert wait_until(lambda: len(chunks) > n_chunks + 30, 120.0), logs()
        i_resume = len(commands)
        assert wait_until(lambda: len(arm_commands_since(i_resume)) > 20, 10.0), logs()
        moving = np.array([m.position for m in arm_commands_since(i_resume)])
        assert np.abs(moving - moving[0]).max() > 1e-6  # an untrained policy moves the arms again
        assert wait_until(lambda: any(s.name == "arm_ik: safety: state" and s.level == DiagnosticStatus.OK
                                      for d in diagnostics[len(diagnostics) - 20:] for s in d.status), 10.0)

        # 4. The evaluator finishes its episodes; the one that saw the kill records the controllers' fault.
        assert nodes["evaluator"].wait(timeout_s=120.0) == 0, logs()
        records = json.loads((out / "results.json").read_text())["records"]
        faults = [f for r in records for f in r["faults"]]
        assert any(f.startswith("arm_ik: safety: state: hold") and "policy silent" in f for f in faults), records
        assert any(f.startswith("hand_retarget: safety: state: hold") for f in faults), records
    finally:
        for node in nodes.values():
            node.stop()
