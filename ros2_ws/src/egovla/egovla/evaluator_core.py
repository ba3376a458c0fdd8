"""The evaluator's logic without ROS: the protocol's episode list, the sim bridge's parameters for one episode,
``/egovla/task_status`` parsing, per-episode bookkeeping (end at first success or at the horizon, faults,
timeouts), the record of an episode, video frame selection and composition, and the results files.

The protocol (episode list, seeds, horizon) and the summary/table are the twin's (``egovla_sim.tasks``,
``egovla_sim.evaluation``): records written here have the same fields as ``egovla-sim eval``'s, plus the ROS
graph's own (``missed_ticks``, ``stale_commands``, ``faults``, ``bridge_episode``).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np

from egovla_sim.evaluation import markdown_table
from egovla_sim.tasks import Rollout, get_task, protocol_rollouts, summarize

SPLITS = ("seen", "unseen")
EPISODE_SEED = 0  # egovla_sim.evaluation.evaluate runs every rollout with run_rollout's seed 0
MAX_FAULTS = 20  # distinct fault texts kept per episode (a long hold repeats the same few)
# task_status values that are bookkeeping, not subtask flags (egovla.sim_bridge_core.status_values)
STATUS_KEYS = ("success", "progress", "episode", "tick", "global_tick", "stamp_ns", "missed_ticks", "stale_commands",
               "placement_index", "mode", "stopped", "failure")


def episode_plan(task: str, split: str, episodes: int = 0) -> list[Rollout]:
    """The protocol's rollouts of ``task`` for ``split``; ``episodes`` > 0 keeps the first ``episodes``."""
    if split not in SPLITS:
        raise ValueError(f"split must be seen or unseen, got {split!r}")
    if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 0:
        raise ValueError(f"episodes must be an integer >= 0 (0 = the whole split), got {episodes!r}")
    plan = protocol_rollouts(get_task(task), split)
    if episodes > len(plan):
        raise ValueError(f"the {split} split of {get_task(task).name} has {len(plan)} episodes, asked for {episodes}")
    return plan[:episodes] if episodes else plan


def bridge_parameters(rollout: Rollout, seed: int = EPISODE_SEED) -> dict:
    """The sim bridge's parameters for one protocol rollout (applied by its next ``/sim/reset``)."""
    return {"task": get_task(rollout.task).name, "placement_index": int(rollout.placement_index),
            "visual_room": int(rollout.room), "visual_table": int(rollout.table), "seed": int(seed),
            "max_ticks": int(get_task(rollout.task).horizon)}


def parse_status(values) -> dict:
    """``/egovla/task_status`` key/value pairs -> typed values; subtask flags under ``subtasks``."""
    v = dict(values)
    return {"success": v.get("success") == "1", "progress": float(v.get("progress", 0.0)),
            "subtasks": {k: float(x) for k, x in v.items() if k not in STATUS_KEYS},
            "episode": int(v.get("episode", -1)), "tick": int(v.get("tick", 0)),
            "stamp_ns": int(v.get("stamp_ns", 0)), "missed_ticks": int(v.get("missed_ticks", 0)),
            "stale_commands": int(v.get("stale_commands", 0)), "stopped": v.get("stopped") == "1",
            "failure": v.get("failure") or None}


class EpisodeTracker:
    """One episode, followed on the bridge's task status: ends at the first success, at the horizon, when the
    bridge stops it (failure or ``max_ticks``), or when the status goes silent for ``tick_timeout_s``."""

    def __init__(self, rollout: Rollout, bridge_episode: int, start_stamp_ns: int, now_s: float,
                 tick_timeout_s: float = 10.0):
        self.rollout = rollout
        self.horizon = get_task(rollout.task).horizon
        self.bridge_episode = bridge_episode
        self.start_stamp_ns = start_stamp_ns
        self.start_s = self.last_status_s = now_s
        self.tick_timeout_s = tick_timeout_s
        self.last: dict | None = None
        self.done = False
        self.end_reason = ""
        self.end_s: float | None = None
        self.faults: list[str] = []

    def on_status(self, status: dict, now_s: float) -> bool:
        """Feed one parsed status; True once the episode has ended. Other episodes' statuses are ignored."""
        if self.done or status["episode"] != self.bridge_episode:
            return self.done
        if self.last is not None and status["stamp_ns"] == self.last["stamp_ns"]:
            return self.done  # the bridge re-announcing a waiting tick: no progress, the timeout keeps running
        self.last = status
        self.last_status_s = now_s
        if status["failure"]:
            self._end("failure", now_s)
            self.add_fault(f"simulation failure: {status['failure']}")
        elif status["success"]:
            self._end("success", now_s)
        elif status["tick"] >= self.horizon:
            self._end("horizon", now_s)
        elif status["stopped"]:
            self._end("stopped", now_s)
        return self.done

    def check_timeout(self, now_s: float) -> bool:
        """True (and the episode ended with a fault) once no status came for ``tick_timeout_s`` wall seconds."""
        if not self.done and now_s - self.last_status_s > self.tick_timeout_s:
            tick = self.last["tick"] if self.last else "none yet"
            self.add_fault(f"timeout: no /egovla/task_status for {self.tick_timeout_s:g} s (last tick {tick})")
            self._end("timeout", now_s)
        return self.done

    def add_fault(self, text: str):
        if text not in self.faults and len(self.faults) < MAX_FAULTS:
            self.faults.append(text)

    def _end(self, reason: str, now_s: float):
        self.done, self.end_reason, self.end_s = True, reason, now_s

    @property
    def end_stamp_ns(self) -> int:
        """Stamp of the last observation of the episode (its final frame)."""
        return self.last["stamp_ns"] if self.last else self.start_stamp_ns

    def record(self, policy: str, seed: int = EPISODE_SEED, video: str | None = None) -> dict:
        """The episode's record: the twin's JSONL fields plus the graph's own."""
        s = self.last or {"success": False, "progress": 0.0, "subtasks": {}, "tick": 0, "missed_ticks": 0,
                          "stale_commands": 0, "failure": None}
        end = self.end_s if self.end_s is not None else self.last_status_s
        return {**asdict(self.rollout), "task": get_task(self.rollout.task).name, "policy": policy, "seed": seed,
                "success": bool(s["success"]), "progress": float(s["progress"]), "subtasks": dict(s["subtasks"]),
                "steps": int(s["tick"]), "failure": s["failure"], "end": self.end_reason,
                "missed_ticks": int(s["missed_ticks"]), "stale_commands": int(s["stale_commands"]),
                "faults": list(self.faults), "bridge_episode": self.bridge_episode,
                "wall_s": round(end - self.start_s, 2), "video": video}


def fault_record(rollout: Rollout, policy: str, fault: str, seed: int = EPISODE_SEED) -> dict:
    """The record of an episode that never ran (e.g. the bridge refused the reset)."""
    t = EpisodeTracker(rollout, -1, 0, 0.0)
    t.add_fault(fault)
    t._end("fault", 0.0)
    return t.record(policy, seed)


def diagnostic_fault(name: str, level: int, message: str, bridge_name: str = "sim_bridge") -> str | None:
    """A ``/diagnostics`` status that counts as a fault: level ERROR from a node other than the bridge."""
    if level < 2 or name.startswith(f"{bridge_name}:") or name == bridge_name:
        return None
    return f"{name}: {message}"


# --- video ----------------------------------------------------------------------------------------------------

class FrameSelector:
    """Picks an episode's video frames from the image stream and pairs each with the latest action chunk stamped at
    or before it. A frame is held until a later image (or the episode's end) shows no newer chunk can be meant
    for it; ``take(up_to_ns)`` hands out ready frames up to a stamp, ``finish(end_ns)`` the rest up to the end."""

    def __init__(self, start_stamp_ns: int):
        self.start = start_stamp_ns
        self.chunks: list[tuple[int, np.ndarray]] = []
        self.pending: tuple[int, np.ndarray] | None = None
        self.ready: list[tuple[int, np.ndarray, np.ndarray | None]] = []
        self.latest_image_ns = -1

    def add_chunk(self, stamp_ns: int, chunk: np.ndarray):
        # Kept until no frame can use it any more (frames may lag the chunks when drawing is slower than the sim).
        if stamp_ns >= self.start:
            self.chunks = sorted([*self.chunks, (stamp_ns, chunk)], key=lambda c: c[0])

    def add_image(self, stamp_ns: int, image: np.ndarray):
        if stamp_ns < self.start or stamp_ns <= self.latest_image_ns:
            return
        self.latest_image_ns = stamp_ns
        if self.pending is not None:
            self._emit()
        self.pending = (stamp_ns, image)

    def chunk_for(self, stamp_ns: int) -> np.ndarray | None:
        older = [c for s, c in self.chunks if s <= stamp_ns]
        return older[-1] if older else None

    def _emit(self):
        stamp, image = self.pending
        self.ready.append((stamp, image, self.chunk_for(stamp)))
        self.pending = None
        # frames come in stamp order: chunks older than the one this frame used are done with
        older = [k for k, (s, _) in enumerate(self.chunks) if s <= stamp]
        if len(older) > 1:
            self.chunks = self.chunks[older[-1]:]

    def take(self, up_to_ns: int) -> list[tuple[int, np.ndarray, np.ndarray | None]]:
        out = [f for f in self.ready if f[0] <= up_to_ns]
        self.ready = [f for f in self.ready if f[0] > up_to_ns]
        return out

    def finish(self, end_ns: int) -> list[tuple[int, np.ndarray, np.ndarray | None]]:
        if self.pending is not None and self.pending[0] <= end_ns:
            self._emit()
        self.pending = None
        out = self.take(end_ns)
        self.ready = []
        return out


def video_size(width: int, height: int, video_width: int) -> tuple[int, int]:
    """Frame size of the video: ``video_width`` wide (0 = the image's), same aspect, both even (H.264)."""
    w = int(video_width or width)
    h = int(round(height * w / width))
    return max(2, w - w % 2), max(2, h - h % 2)


def compose_frame(image: np.ndarray, chunk: np.ndarray | None, camera, size: tuple[int, int],
                  root_offset=None, caption: str | None = None) -> np.ndarray:
    """One video frame: the camera image scaled to ``size`` with the chunk's predicted wrist trajectories drawn
    (``render_trajectories``, green; there is no ground truth in a rollout). ``camera``: the intrinsics of
    ``image`` (a ``PinholeCamera`` of the image's size, from ``/ego_camera/camera_info``)."""
    image = np.asarray(image, dtype=np.uint8)
    if (image.shape[1], image.shape[0]) != tuple(size):
        from PIL import Image

        image = np.asarray(Image.fromarray(image).resize(tuple(size), Image.BILINEAR))
    if chunk is None and not caption:
        return np.ascontiguousarray(image)
    from egovla_training.evaluation.trajectory_plot import render_trajectories

    cam = camera.resized(*size) if camera is not None else None
    if chunk is None:
        chunk = np.full((1, 48), np.nan)
    pred = np.asarray(chunk, dtype=np.float64)
    target = np.full_like(pred, np.nan)  # nothing to compare with: only the prediction is drawn
    # the mask selects the steps drawn; the NaN "truth" projects nowhere
    return render_trajectories(image, pred, target, np.isfinite(pred[:, :1]).repeat(2, axis=1), camera=cam,
                               root_offset=root_offset, caption=caption, legend=False)


def video_name(rollout: Rollout) -> str:
    """As ``egovla-sim eval --video`` names its files."""
    return (f"{get_task(rollout.task).name}_room{rollout.room}_table{rollout.table}_ep{rollout.episode}"
            f"_trial{rollout.trial}.mp4")


# --- results --------------------------------------------------------------------------------------------------

def write_results(out_dir: Path, split: str, records: list[dict], extra: dict | None = None) -> str:
    """``results.json`` (split, summary, records) and ``results.md`` (the twin's SR/PSR table); returns the table."""
    out_dir = Path(out_dir)
    summary = summarize(records)
    table = markdown_table(summary, split, records)
    faulty = [r for r in records if r.get("faults")]
    if faulty:
        table += f"\n{len(faulty)} episode(s) with faults:\n"
        table += "".join(f"- {r['task']} room {r['room']} table {r['table']} ep {r['episode']} trial {r['trial']}: "
                         f"{'; '.join(r['faults'][:3])}\n" for r in faulty)
    (out_dir / "results.json").write_text(json.dumps({"split": split, **(extra or {}), "summary": summary,
                                                      "records": records}, indent=1))
    (out_dir / "results.md").write_text(table)
    return table
