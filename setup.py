"""Ships the top-level abis/ and queries/ folders inside the wheel (as chainrisk/_data/), so an installed chainrisk
finds its ABIs and analysts' views without a checkout; everything else is configured in pyproject.toml."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

DATA_FOLDERS = ("abis", "queries")


class BuildWithData(build_py):
    def run(self) -> None:
        super().run()
        for folder in DATA_FOLDERS:
            target = Path(self.build_lib) / "chainrisk" / "_data" / folder
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(folder, target)


setup(cmdclass={"build_py": BuildWithData})
