"""``egovla-launch <graph> [name:=value ...]``: start a node graph without ``ros2 launch``.

Pip-only machines have rclpy but no ``launch`` / ``ros2cli`` wheels. This starts the nodes of the same graph
description the launch files read (``egovla.graph``), each as its own process (``python -m <module> --ros-args
-r __node:=<name> --params-file <file>``; an entry with ``components`` hosts several nodes, which keep their
names and read their sections of the file), and supervises them:

- every node's output goes to ``<log_dir>/<name>.log`` and, prefixed with ``[name]``, to the terminal;
- Ctrl-C (SIGINT) or SIGTERM stops every node (SIGINT, then SIGTERM after ``--grace`` seconds, then SIGKILL) and
  exits 0 once they are down;
- a node that exits ends the graph: with 0 if it is marked ``ends_graph`` and exited with 0 (an evaluator that
  finished its episodes), otherwise with 1 and one line naming the node, its exit code and its log.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

from .graph import GraphError, NodeSpec, load_graph, params_file_text


class NodeProcess:
    """One node's process, with its output copied to a log file and (optionally) the terminal."""

    def __init__(self, spec: NodeSpec, log_dir: Path, echo: bool, env: dict):
        self.spec = spec
        self.log_path = log_dir / f"{spec.name}.log"
        params = log_dir / f"{spec.name}.params.yaml"
        params.write_text(params_file_text(spec))
        # a process hosting several nodes keeps their names (a __node remap would give all of them the entry's)
        rename = [] if spec.components else ["-r", f"__node:={spec.name}"]
        cmd = [sys.executable, "-u", "-m", spec.module, "--ros-args", *rename, "--params-file", str(params)]
        self._log = open(self.log_path, "wb")
        # own process group: a Ctrl-C in the terminal reaches the launcher only, which stops the nodes in order
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True)
        self._echo = echo
        self._reader = threading.Thread(target=self._copy, daemon=True)
        self._reader.start()

    def _copy(self):
        prefix = f"[{self.spec.name}] ".encode()
        for line in iter(self.proc.stdout.readline, b""):
            self._log.write(line)
            self._log.flush()
            if self._echo:
                sys.stdout.buffer.write(prefix + line)
                sys.stdout.buffer.flush()

    def poll(self) -> int | None:
        return self.proc.poll()

    def signal(self, sig: int):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass

    def close(self):
        self._reader.join(timeout=2.0)
        self._log.close()


def stop_all(nodes: list[NodeProcess], grace_s: float) -> None:
    """SIGINT to every node, SIGTERM to those still up after ``grace_s``, SIGKILL after as long again."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
        for n in nodes:
            n.signal(sig)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and any(n.poll() is None for n in nodes):
            time.sleep(0.05)
        if all(n.poll() is not None for n in nodes):
            break
    for n in nodes:
        n.proc.wait()
        n.close()


def run_graph(graph_name: str, values: dict[str, str], log_dir: Path, echo: bool = True, grace_s: float = 5.0,
              env: dict | None = None) -> int:
    """Start the graph's nodes and supervise them until one exits or the launcher is interrupted."""
    specs = load_graph(graph_name).resolve(values)
    log_dir.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT, signal.SIGTERM)}
    nodes: list[NodeProcess] = []
    code = 0
    try:
        for spec in specs:
            nodes.append(NodeProcess(spec, log_dir, echo, dict(env or os.environ)))
        print(f"egovla-launch: {len(nodes)} node(s) of {graph_name}: {', '.join(s.name for s in specs)}; "
              f"logs in {log_dir}", flush=True)
        while not stop.is_set():
            ended = [n for n in nodes if n.poll() is not None]
            if ended:
                first = ended[0]
                rc = first.poll()
                if first.spec.ends_graph and rc == 0:
                    print(f"egovla-launch: {first.spec.name} finished; stopping the graph", flush=True)
                else:
                    print(f"egovla-launch: error: node {first.spec.name} exited with code {rc}; "
                          f"log: {first.log_path}", file=sys.stderr, flush=True)
                    code = 1
                break
            stop.wait(0.1)
    finally:
        stop_all(nodes, grace_s)
        for s, handler in previous.items():
            signal.signal(s, handler)
    return code


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="egovla-launch",
        description="Start an EgoVLA node graph (config/graphs/<graph>.yaml) without ros2 launch: the same nodes "
                    "and parameters as launch/<graph>.launch.py, one process each, logs per node.")
    parser.add_argument("graph", help="graph name (e.g. sim_eval) or path to a graph .yaml")
    parser.add_argument("arguments", nargs="*", help="launch arguments as name:=value, e.g. task:=close_drawer")
    parser.add_argument("--log-dir", type=Path, help="where the per-node logs go (default: "
                        "outputs/logs/<graph>-<time>)")
    parser.add_argument("--quiet", action="store_true", help="logs to files only, not to the terminal")
    parser.add_argument("--grace", type=float, default=5.0, help="seconds between SIGINT, SIGTERM and SIGKILL")
    parser.add_argument("--show", action="store_true", help="print the resolved nodes and parameters, start nothing")
    args = parser.parse_args(argv)
    values = {}
    for item in args.arguments:
        if ":=" not in item:
            print(f"egovla-launch: error: argument {item!r} must be name:=value", file=sys.stderr)
            return 2
        k, v = item.split(":=", 1)
        values[k] = v
    try:
        graph = load_graph(args.graph)
        specs = graph.resolve(values)
    except GraphError as e:
        print(f"egovla-launch: error: {e}", file=sys.stderr)
        return 2
    if args.show:
        for spec in specs:
            print(params_file_text(spec), end="")
        return 0
    log_dir = args.log_dir or Path("outputs") / "logs" / f"{graph.name}-{datetime.now():%Y%m%d-%H%M%S}"
    return run_graph(args.graph, values, log_dir, echo=not args.quiet, grace_s=args.grace)


if __name__ == "__main__":
    sys.exit(main())
