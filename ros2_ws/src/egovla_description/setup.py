from setuptools import find_packages, setup

package_name = "egovla_description"

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    package_data={package_name: ["robots/*.yaml"]},
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + package_name]),
        ("share/" + package_name, ["package.xml"]),
    ],
    install_requires=["setuptools", "numpy", "scipy", "pyyaml", "pin"],
    zip_safe=True,
    maintainer="EgoVLA ROS maintainers",
    maintainer_email="maintainers@egovla-ros.org",
    description="H1 + Inspire robot description, geometry core and Pinocchio FK/IK for the EgoVLA stack.",
    license="MIT",
    entry_points={
        "console_scripts": [
            "egovla-description = egovla_description.cli:main",
        ],
    },
)
