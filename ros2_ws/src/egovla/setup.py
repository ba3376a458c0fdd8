from glob import glob

from setuptools import find_packages, setup

package_name = "egovla"

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + package_name]),
        ("share/" + package_name, ["package.xml"]),
        # launch -> the repository's launch/ folder (a symlink), installed where `ros2 launch egovla` looks.
        ("share/" + package_name + "/launch", glob("launch/*.launch.py")),
        # config -> the repository's config/ folder (a symlink): graph descriptions and node parameters.
        ("share/" + package_name + "/config/graphs", glob("config/graphs/*.yaml")),
        ("share/" + package_name + "/config", glob("config/*.yaml")),
    ],
    install_requires=["setuptools", "PyYAML", "numpy", "egovla_description", "egovla_sim", "egovla_training"],
    zip_safe=True,
    maintainer="EgoVLA ROS maintainers",
    maintainer_email="maintainers@egovla-ros.org",
    description="ROS 2 nodes of the EgoVLA stack.",
    license="MIT",
    entry_points={
        "console_scripts": [
            "robot_description_publisher = egovla.robot_description_publisher:main",
            "egovla-launch = egovla.launcher:main",
            "sim_bridge = egovla.nodes.sim_bridge:main",
            "smoother = egovla.nodes.smoother:main",
            "control = egovla.nodes.control:main",
            "arm_ik = egovla.nodes.arm_ik:main",
            "hand_retarget = egovla.nodes.hand_retarget:main",
            "recorder = egovla.nodes.recorder:main",
            "teleop_replay = egovla.nodes.teleop_replay:main",
            "evaluator = egovla.nodes.evaluator:main",
            "policy = egovla.nodes.policy:main",
            "camera = egovla.nodes.camera:main",
            "egovla-demo = egovla.demo:main",
        ],
    },
)
