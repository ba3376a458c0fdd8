"""Shared part of the nodes that turn smoothed action steps into ``/joint_command``: arm IK and hand retargeting.

    sub  /egovla/action          sensor_msgs/JointState  one smoothed 48-value step (stamp = the tick it answers)
    sub  /egovla/action_chunk    trajectory_msgs/JointTrajectory  the policy's chunks, as its heartbeat only
                                                                  (``policy_heartbeat:=chunk``)
    sub  /joint_states           sensor_msgs/JointState  measured positions (IK seed, hold pose at start); taken
                                                         serialized and read with ``egovla.cdr``
    sub  /ego_camera/camera_info sensor_msgs/CameraInfo  the camera's heartbeat (published with every frame; far
                                                         cheaper to receive than the image)
    sub  /egovla/task_status     diagnostic_msgs/DiagnosticStatus  a new episode re-initialises the hold pose
    pub  /joint_command          sensor_msgs/JointState  this node's joints, stamped like the step they answer;
                                                         published serialized (``egovla.cdr``)
    pub  /diagnostics            diagnostic_msgs/DiagnosticArray   safety state, counters, silences (1 Hz, and on
                                                                   every change of state)

Every command goes through the safety layer (``egovla.safety``) restricted to this node's joint groups: limits,
per-tick velocity caps paced by the commands' stamps (sim time in simulation: how far a joint moves per tick does
not depend on how fast the machine runs), whole-command rejection of NaN/Inf. Watchdog: when the policy chain or the camera is silent for longer than its
timeout on the node's clock, the node publishes
the hold pose -- the last safe targets -- every control period, stamped with the latest joint state, so a lockstep
simulator keeps stepping with the robot holding still; when both are back it resumes, ramping its velocity caps
up. The policy chain is watched as ``/egovla/action`` steps (``policy_heartbeat:=step``, for sources that publish
steps directly), or (``chunk``) as the policy's own ``/egovla/action_chunk`` plus the smoother's steps as a source of
their own: a smoother replaying stored chunks on its timer keeps the steps coming for up to a chunk's second after
the policy died, and the robot must not follow a dead policy that long.

The clock is the node's: wall time on a robot or a free-running simulator, sim time (``use_sim_time``) in a
lockstep simulation. There sim time stands still while the simulator waits for commands, so a slow policy is not
"silent"; a dead one is: the simulator's lockstep timeout advances time with the last targets (the robot holds
still), and after the watchdog's timeout in sim time the nodes hold formally and say so on ``/diagnostics``.
"""

from __future__ import annotations

from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, JointState
from trajectory_msgs.msg import JointTrajectory

from egovla_description import load_robot

from ..cdr import JointStateData, decode_joint_state, encode_joint_state
from ..msgs import MessageError, msg_to_step, stamp_to_s
from ..safety import STATE_HOLD, STATE_NO_TARGETS, SafetyConfig, SafetyFilter
from .common import RECORDED_DEPTH, EgoNode, declare, throttled


class JointController(EgoNode):
    """Subclasses set ``groups`` and define ``targets(step (48,), measured positions) -> {joint name: rad}``."""

    groups: tuple[str, ...] = ()

    def __init__(self, name: str, subscribe_action: bool = True, subscribe_inputs: bool = True):
        """``subscribe_action`` False: no ``/egovla/action`` (nor ``/egovla/action_chunk``) subscription; the steps
        come from ``on_step`` calls and the chunks' arrivals from ``on_chunk_arrival`` calls (the smoother in the
        same process, ``egovla.nodes.control``). ``subscribe_inputs`` False: no subscription to the joint states,
        the camera's heartbeat and the task status either; a controller in the same process passes them on (it
        lists this one in its ``followers``)."""
        super().__init__(name)
        self.followers: list[JointController] = []
        # Whose clock ``_now`` reads. A follower reads its leader's: with sim time each node's clock moves when
        # that node's own /clock subscription is served, and the executor may serve the leader's joint state
        # (handed on to the follower at once) before the follower's /clock.
        self.clock_node: Node = self
        robot_name = declare(self, "robot", "h1_inspire", "robot table name or path")
        self.robot = load_robot(robot_name)
        positive = (lambda v: v > 0, "must be > 0")
        self.policy_heartbeat = declare(self, "policy_heartbeat", "step", "what shows the policy is alive: step "
                                        "(/egovla/action) or chunk (/egovla/action_chunk; the steps are then watched "
                                        "as the smoother's heartbeat)", lambda v: v in ("step", "chunk"),
                                        "must be step or chunk")
        policy_timeout = declare(self, "policy_timeout_s", 0.2, "hold when the policy was silent for this long (s, "
                                 "node clock)", *positive)
        stale = {"policy": policy_timeout,
                 "camera": declare(self, "camera_timeout_s", 0.2, "hold when no camera image came for this long (s, "
                                   "node clock)", *positive)}
        if self.policy_heartbeat == "chunk":
            stale["smoother"] = declare(self, "smoother_timeout_s", 0.2, "policy_heartbeat chunk: hold when no "
                                        "action step came for this long (s, node clock)", *positive)
        config = SafetyConfig(
            limit_margin_rad=declare(self, "limit_margin_rad", 0.01, "targets stay this far inside the position "
                                     "limits (rad)", lambda v: 0 <= v < 0.5, "must be in [0, 0.5)"),
            max_arm_velocity_rad_s=declare(self, "max_arm_velocity_rad_s", 2.0, "arm joint speed cap (rad/s)",
                                           *positive),
            max_hand_velocity_rad_s=declare(self, "max_hand_velocity_rad_s", 4.0, "hand joint speed cap (rad/s)",
                                            *positive),
            control_hz=declare(self, "control_hz", 30.0, "control rate (Hz)", *positive),
            stale_after_s=stale,
            resume_ramp_s=declare(self, "resume_ramp_s", 0.5, "after a hold, velocity caps ramp up over this "
                                  "time (s)", lambda v: v >= 0, "must be >= 0"),
            groups=self.groups)
        self.reset_gap_s = declare(self, "reset_gap_s", 0.5, "a gap (or a step back) this long in /joint_states "
                                   "stamps means a reset: the hold pose becomes the measured one (s)", *positive)
        self.safety = SafetyFilter(self.robot, config)
        self.positions: dict[str, float] | None = None
        self.state_stamp = None
        self._episode = None
        self._reinit = False
        self._last_state = None
        self._hold_published_for = None
        self._last_timer_s = None
        self._init_s = None  # node-clock time of the last initialise of the safety layer
        self.command_pub = self.create_publisher(JointState, "/joint_command", RECORDED_DEPTH)
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        if subscribe_action:
            self.create_subscription(JointState, "/egovla/action", self._on_action, 10)
        if self.policy_heartbeat == "chunk" and subscribe_action:
            # serialized: only the arrival matters, and decoding a 30-point chunk costs about 0.2 ms
            self.create_subscription(JointTrajectory, "/egovla/action_chunk", self._on_chunk, 10, raw=True)
        if subscribe_inputs:
            # serialized: the bridge's 50-joint state costs rclpy about 45 us to deserialize, egovla.cdr 15-20 us
            self.create_subscription(JointState, "/joint_states", self._fan_out("_on_joint_states", self._decode),
                                     10, raw=True)
            for msg_type, topic, handler in ((CameraInfo, "/ego_camera/camera_info", "_on_camera"),
                                             (DiagnosticStatus, "/egovla/task_status", "_on_task_status")):
                self.create_subscription(msg_type, topic, self._fan_out(handler), 10)
        self.create_timer(1.0 / config.control_hz, self._on_timer)
        self.create_timer(1.0, self._publish_diagnostics)

    def _now(self) -> float:
        """The node's clock (s): sim time with use_sim_time, else wall time."""
        return self.clock_node.get_clock().now().nanoseconds * 1e-9

    # -- subclass API: ``targets(step, positions) -> {joint: rad}`` (required), and optionally: ---------------
    def on_new_episode(self):
        """Called when the simulator starts a new episode (e.g. reseed the IK)."""

    # -- inputs -------------------------------------------------------------------------------------------------
    def _fan_out(self, handler: str, convert=None):
        """The subscription callback that hands a message (``convert``-ed once, if given; None: dropped) to this
        node's ``handler`` and to its followers'."""
        def deliver(msg):
            if convert is not None and (msg := convert(msg)) is None:
                return
            for node in (self, *self.followers):
                getattr(node, handler)(msg)
        return deliver

    def _decode(self, data: bytes) -> JointStateData | None:
        try:
            state = decode_joint_state(data)
            if len(state.names) != len(state.position):
                raise MessageError(f"joint state has {len(state.names)} names but {len(state.position)} positions")
        except MessageError as e:
            throttled(self).error(f"joint state ignored: {e}", throttle_duration_sec=1.0)
            return None
        return state

    def _on_joint_states(self, state: JointStateData):
        """A measured joint state (names and positions pair up: ``_decode`` checked)."""
        positions = dict(zip(state.names, state.position.tolist()))
        previous = self.state_stamp
        stamp = Time(sec=state.stamp[0], nanosec=state.stamp[1])
        self.positions, self.state_stamp = positions, stamp
        # A jump in the measured state's time (a simulator reset, a restarted robot driver) or a new episode
        # announced on /egovla/task_status: hold where the robot is now, not where the last targets were.
        gap = None if previous is None else stamp_to_s(stamp) - stamp_to_s(previous)
        jumped = gap is not None and not 0 <= gap < self.reset_gap_s
        if self.safety.state(self._now()) == STATE_NO_TARGETS or self._reinit or jumped:
            try:
                self.safety.initialise(positions, self._now())
                self._init_s = self._now()
            except ValueError as e:
                throttled(self).error(f"cannot hold this pose: {e}", throttle_duration_sec=1.0)
                return
            self._reinit = False

    def _on_camera(self, _msg: CameraInfo):
        self.safety.heartbeat("camera", self._now())

    def _on_chunk(self, _data: bytes):
        self.on_chunk_arrival()

    def on_chunk_arrival(self):
        """The policy published a chunk (well-formed or not): with ``policy_heartbeat:=chunk``, it is alive."""
        if self.policy_heartbeat == "chunk":
            self.safety.heartbeat("policy", self._now())

    def _on_task_status(self, msg: DiagnosticStatus):
        episode = next((kv.value for kv in msg.values if kv.key == "episode"), None)
        if episode is not None and episode != self._episode:
            if self._episode is not None:
                self._reinit = True  # the next joint state is the new episode's start pose
                self.on_new_episode()
            self._episode = episode

    def _on_action(self, msg: JointState):
        try:
            step = msg_to_step(msg)
        except MessageError as e:
            throttled(self).error(f"action step rejected: {e}", throttle_duration_sec=1.0)
            return
        self.on_step(step, msg.header.stamp)

    def on_step(self, step, stamp):
        """One smoothed 48-value step (finite, ``egovla.msgs.msg_to_step``'s checks passed) answering the tick
        ``stamp``: convert, filter, publish. The step is read, never written."""
        now = self._now()
        self.safety.heartbeat("smoother" if self.policy_heartbeat == "chunk" else "policy", now)
        if self.positions is None:
            throttled(self).warn("no joint state yet: action step ignored", throttle_duration_sec=1.0)
            return
        try:
            wanted = self.targets(step, self.positions)
        except ValueError as e:
            throttled(self).error(f"action step not converted: {e}", throttle_duration_sec=1.0)
            return
        self._send(self.safety.filter(wanted, now, tick_s=stamp_to_s(stamp)), stamp)

    # -- outputs ------------------------------------------------------------------------------------------------
    def _send(self, result, stamp):
        for line in result.events:
            throttled(self).warn(line, throttle_duration_sec=1.0)
        if result.targets:
            self.command_pub.publish(encode_joint_state(result.targets, list(result.targets.values()), stamp.sec,
                                                        stamp.nanosec))
        if result.state != self._last_state:
            self._last_state = result.state
            self._publish_diagnostics()

    def _clock_jumped(self, now: float) -> None:
        """A jump of the clock (a simulator reset: sim time leaps over the warm-up) restarts the watchdog from the
        measured pose: silence across a reset is nobody's fault."""
        last, self._last_timer_s = self._last_timer_s, now
        if last is None:
            # the first tick of this timer: a node on sim time that initialised before its first /clock message
            # read 0 then, so the jump is measured from that initialise
            last = self._init_s
        fresh = self._init_s is not None and 0 <= now - self._init_s < self.reset_gap_s  # a joint state did it
        if last is not None and not 0 <= now - last < self.reset_gap_s and self.positions is not None and not fresh:
            self.safety.initialise(self.positions, now)
            self._init_s = now
            self._reinit = True  # and again from the new episode's first joint state

    def _on_timer(self):
        now = self._now()
        self._clock_jumped(now)
        if self.safety.state(now) != STATE_HOLD or self.state_stamp is None:
            return
        stamp_key = (self.state_stamp.sec, self.state_stamp.nanosec)
        if stamp_key == self._hold_published_for:
            return  # one hold command per observation: a lockstep simulator steps once per tick
        self._hold_published_for = stamp_key
        self._send(self.safety.filter({}, now, tick_s=stamp_to_s(self.state_stamp)), self.state_stamp)

    def _publish_diagnostics(self):
        self._clock_jumped(self._now())
        array = DiagnosticArray()
        array.header.stamp = self.get_clock().now().to_msg()
        for status in self.safety.diagnostics(self._now()):
            array.status.append(DiagnosticStatus(
                level=bytes([status["level"]]), name=f"{self.get_name()}: {status['name']}",
                message=status["message"], hardware_id=self.robot.name,
                values=[KeyValue(key=k, value=v) for k, v in status.get("values", [])]))
        self.diag_pub.publish(array)
