from setuptools import find_packages, setup

package_name = "egovla_sim"

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + package_name]),
        ("share/" + package_name, ["package.xml"]),
    ],
    install_requires=["setuptools", "egovla_description", "mujoco", "numpy", "matplotlib", "pillow", "imageio",
                      "imageio-ffmpeg", "tqdm"],
    zip_safe=True,
    maintainer="EgoVLA ROS maintainers",
    maintainer_email="maintainers@egovla-ros.org",
    description="MuJoCo simulation of the EgoVLA benchmark robot, and the kinematics demo.",
    license="MIT",
    entry_points={
        "console_scripts": [
            "egovla-kinematics-demo = egovla_sim.kinematics_demo:main",
            "egovla-sim = egovla_sim.cli:main",
        ],
    },
)
