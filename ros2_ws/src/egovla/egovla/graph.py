"""Node-graph descriptions: one YAML file per graph, read by ``ros2 launch`` files and by ``egovla-launch``.

A graph file (``config/graphs/<name>.yaml``) declares its launch arguments and its nodes::

    description: what the graph does
    arguments:
      task: {default: close_drawer, description: benchmark task id}
      sim: {default: mujoco, choices: [mujoco, isaac], description: which simulator bridge}
      episodes: {default: 0, type: int, description: "0: the protocol's count"}
    nodes:
      - name: sim_bridge                  # ROS node name (also the log file's name)
        executable: sim_bridge            # console script of the egovla package
        module: egovla.nodes.sim_bridge   # the same entry point as a module, for machines without ros2 launch
        if: sim == mujoco                 # optional: <argument> == <value>, <argument> != <value> or <argument>
        ends_graph: false                 # optional: when this node exits with 0, the whole graph stops with 0
      # several entries may share a name if their conditions exclude each other (e.g. per-policy parameters)
        parameters: {task: "${task}", image_width: 640}
      - name: control                     # a process that hosts several nodes (``components`` instead of
        executable: control               # ``parameters``): each node keeps its own name and gets its own section
        module: egovla.nodes.control      # of the parameters file; the entry's name names the process and its log
        components:
          smoother: {k_wrist: 0.2}
          arm_ik: {ik_mode: converge}

``${name}`` is replaced by the argument's value; a value that is exactly one ``${name}`` takes the argument's type
(``type``: str, int, float or bool; default: the type of the default value). There is one description of each
graph: ``launch/<name>.launch.py`` and ``egovla-launch <name>`` both call ``load_graph(name).resolve(values)``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

_TYPES = {"str": str, "int": int, "float": float, "bool": bool}
_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_CONDITION = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:(==|!=)\s*(\S+))?\s*$")


class GraphError(ValueError):
    """A graph file that cannot be used, or a bad argument value; the message names the file."""


def config_dir() -> Path:
    """The project's ``config/``: the installed ``share/egovla/config`` under colcon, else the source tree's."""
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_share_directory

        try:
            installed = Path(get_package_share_directory("egovla")) / "config"
            if installed.is_dir():
                return installed
        except (PackageNotFoundError, OSError):  # OSError: no AMENT_PREFIX_PATH (nothing sourced)
            pass
    except ImportError:
        pass
    return Path(__file__).resolve().parents[4] / "config"


def graph_path(name_or_path: str | Path) -> Path:
    """``sim_eval`` -> ``<config>/graphs/sim_eval.yaml``; a path to a .yaml file is used as is."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml"):
        return p
    return config_dir() / "graphs" / f"{name_or_path}.yaml"


def _to_type(value, kind: type, what: str):
    if kind is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("true", "1", "yes", "on"):
            return True
        if text in ("false", "0", "no", "off"):
            return False
        raise GraphError(f"{what}: expected true or false, got {value!r}")
    try:
        return kind(value)
    except (TypeError, ValueError):
        raise GraphError(f"{what}: expected {kind.__name__}, got {value!r}") from None


@dataclass(frozen=True)
class Argument:
    name: str
    default: object
    description: str
    type: type = str
    choices: tuple = ()

    def parse(self, value) -> object:
        typed = _to_type(value, self.type, f"argument {self.name}")
        if self.choices and typed not in self.choices:
            raise GraphError(f"argument {self.name}: {typed!r} is not one of {list(self.choices)}")
        return typed


@dataclass(frozen=True)
class NodeSpec:
    """One process of a resolved graph: a node, or (``components``) several nodes with their own names."""

    name: str
    executable: str
    module: str
    parameters: dict  # the node's parameters; with components, {node name: that node's parameters}
    ends_graph: bool = False
    package: str = "egovla"
    components: bool = False


@dataclass
class Graph:
    name: str
    path: Path
    description: str
    arguments: dict[str, Argument]
    nodes: list[dict] = field(default_factory=list)

    def values(self, given: dict[str, object] | None = None) -> dict[str, object]:
        """The typed argument values: the defaults, overridden by ``given`` (strings or typed values)."""
        given = dict(given or {})
        unknown = sorted(set(given) - set(self.arguments))
        if unknown:
            raise GraphError(f"{self.path}: unknown argument(s) {unknown}; this graph takes {sorted(self.arguments)}")
        return {n: a.parse(given.get(n, a.default)) for n, a in self.arguments.items()}

    def resolve(self, given: dict[str, object] | None = None) -> list[NodeSpec]:
        """The nodes to start for these argument values, with their parameters substituted."""
        values = self.values(given)
        specs = []
        for i, node in enumerate(self.nodes):
            where = f"{self.path}: node {node.get('name', i)!r}"
            if "if" in node and not _condition(str(node["if"]), values, where):
                continue
            if "components" in node:
                params = {c: _parameters(p, values, f"{where}, node {c}") for c, p in node["components"].items()}
            else:
                params = _parameters(node.get("parameters"), values, where)
            if any(s.name == node["name"] for s in specs):
                raise GraphError(f"{where}: two nodes named {node['name']!r} for these arguments (entries of one name "
                                 f"need conditions that exclude each other)")
            specs.append(NodeSpec(name=node["name"], executable=node["executable"], module=node["module"],
                                  parameters=params, ends_graph=bool(node.get("ends_graph", False)),
                                  package=node.get("package", "egovla"), components="components" in node))
        return specs


def _condition(text: str, values: dict, where: str) -> bool:
    m = _CONDITION.match(text)
    if not m or m.group(1) not in values:
        raise GraphError(f"{where}: condition {text!r} must be '<argument>', '<argument> == <value>' or "
                         f"'<argument> != <value>' with one of the arguments {sorted(values)}")
    value = values[m.group(1)]
    if m.group(2) is None:
        return bool(value)
    other = _to_type(m.group(3), type(value), where)
    return (value == other) if m.group(2) == "==" else (value != other)


def _parameters(raw: dict | None, values: dict, where: str) -> dict:
    """One node's parameters with the arguments substituted."""
    return {k: _substitute(v, values, f"{where}, parameter {k}") for k, v in (raw or {}).items()}


def _substitute(value, values: dict, where: str):
    if isinstance(value, list):
        return [_substitute(v, values, where) for v in value]
    if not isinstance(value, str):
        return value
    whole = _REF.fullmatch(value)
    for ref in _REF.findall(value):
        if ref not in values:
            raise GraphError(f"{where}: ${{{ref}}} is not an argument of this graph ({sorted(values)})")
    if whole:
        return values[whole.group(1)]
    return _REF.sub(lambda m: str(values[m.group(1)]).lower() if isinstance(values[m.group(1)], bool)
                    else str(values[m.group(1)]), value)


def load_graph(name_or_path: str | Path) -> Graph:
    """Read and check a graph file (see the module docstring); ``GraphError`` names the file and the problem."""
    path = graph_path(name_or_path)
    if not path.is_file():
        available = sorted(p.stem for p in (config_dir() / "graphs").glob("*.yaml"))
        raise GraphError(f"{path}: no such graph file (graphs here: {available})")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise GraphError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("nodes"), list) or not raw["nodes"]:
        raise GraphError(f"{path}: needs a non-empty 'nodes' list")
    unknown = sorted(set(raw) - {"description", "arguments", "nodes"})
    if unknown:
        raise GraphError(f"{path}: unknown key(s) {unknown}")
    arguments = {}
    for name, spec in (raw.get("arguments") or {}).items():
        if not isinstance(spec, dict) or "default" not in spec or "description" not in spec:
            raise GraphError(f"{path}: argument {name!r} needs 'default' and 'description'")
        kind = spec.get("type", type(spec["default"]).__name__)
        if kind not in _TYPES:
            raise GraphError(f"{path}: argument {name!r}: type must be one of {sorted(_TYPES)}, got {kind!r}")
        arg = Argument(name, spec["default"], str(spec["description"]), _TYPES[kind], tuple(spec.get("choices", ())))
        arguments[name] = Argument(name, arg.parse(spec["default"]), arg.description, arg.type,
                                   tuple(arg.parse(c) for c in arg.choices))
    for i, node in enumerate(raw["nodes"]):
        if not isinstance(node, dict):
            raise GraphError(f"{path}: node {i} is not a mapping")
        missing = [k for k in ("name", "executable", "module") if not node.get(k)]
        extra = sorted(set(node) - {"name", "executable", "module", "if", "ends_graph", "parameters", "package",
                                    "components"})
        if missing or extra:
            raise GraphError(f"{path}: node {node.get('name', i)!r}: missing {missing}, unknown {extra}")
        if "components" in node:
            comps = node["components"]
            if "parameters" in node:
                raise GraphError(f"{path}: node {node['name']!r}: 'components' carry the parameters of each hosted "
                                 f"node; 'parameters' beside them is not allowed")
            if not isinstance(comps, dict) or not comps or not all(
                    isinstance(c, str) and isinstance(p or {}, dict) for c, p in comps.items()):
                raise GraphError(f"{path}: node {node['name']!r}: 'components' must map each hosted node's name to "
                                 f"its parameters")
    graph = Graph(path.stem, path, str(raw.get("description", "")), arguments, raw["nodes"])
    graph.resolve()  # every substitution and condition checks out with the defaults
    return graph


def params_file_text(spec: NodeSpec) -> str:
    """The process's parameters as a ROS 2 parameters file: ``<name>: {ros__parameters: ...}``, one section per
    hosted node for ``components``."""
    sections = spec.parameters if spec.components else {spec.name: spec.parameters}
    return yaml.safe_dump({n: {"ros__parameters": p} for n, p in sections.items()}, sort_keys=False)
