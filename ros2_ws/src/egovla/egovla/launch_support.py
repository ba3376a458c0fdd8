"""Launch files from graph descriptions: ``ros2 launch egovla <graph>.launch.py`` builds its actions here.

Every launch argument of ``config/graphs/<graph>.yaml`` becomes a ``DeclareLaunchArgument`` (default, description,
choices); the nodes are resolved with the given values when the launch runs (``OpaqueFunction``), so the launch
file and ``egovla-launch`` start exactly the same nodes with the same parameters. A node marked ``ends_graph``
shuts the launch down when it exits. Imports ``launch`` lazily: the rest of ``egovla`` runs without it.
"""

from __future__ import annotations

from .graph import load_graph, params_file_text


def _node(node_action, shutdown, spec):
    """The launch action of one process of the graph. A process hosting several nodes (``components``) gets no
    name (a name would rename every node in it) and a parameters file with one section per node."""
    on_exit = shutdown() if spec.ends_graph else None
    if not spec.components:
        return node_action(package=spec.package, executable=spec.executable, name=spec.name, output="screen",
                           parameters=[spec.parameters], on_exit=on_exit)
    import tempfile

    with tempfile.NamedTemporaryFile("w", prefix=f"{spec.name}-", suffix=".params.yaml", delete=False) as f:
        f.write(params_file_text(spec))
    return node_action(package=spec.package, executable=spec.executable, output="screen", parameters=[f.name],
                       on_exit=on_exit)


def graph_launch_description(graph_name: str):
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument, OpaqueFunction, Shutdown
    from launch.substitutions import LaunchConfiguration
    from launch_ros.actions import Node

    graph = load_graph(graph_name)

    def nodes(context):
        values = {name: LaunchConfiguration(name).perform(context) for name in graph.arguments}
        return [_node(Node, Shutdown, spec) for spec in graph.resolve(values)]

    declared = [DeclareLaunchArgument(name, default_value=str(arg.default).lower() if arg.type is bool
                                      else str(arg.default), description=arg.description,
                                      **({"choices": [str(c) for c in arg.choices]} if arg.choices else {}))
                for name, arg in graph.arguments.items()]
    return LaunchDescription([*declared, OpaqueFunction(function=nodes)])
