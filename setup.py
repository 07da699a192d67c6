"""Build hook: the wheel carries the example configuration and templates inside the package.

`config/departments.yaml` and `templates/` stay at the top of the source tree, where admins and
developers edit them; a wheel has no source tree, so the build copies both under
`triage/starter/` (same layout, so the example's relative `templates_dir: ../templates` holds).
`triage.config` reads them there when the package is installed from a wheel, and the demo and
`triage init` use them. Everything else about the package is in pyproject.toml.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


class BuildWithStarter(build_py):
    """build_py, plus the copy of config/ and templates/ into the built package."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads them from the source tree itself
        target = Path(self.build_lib) / "triage" / "starter"
        (target / "config").mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / "config" / "departments.yaml", target / "config" / "departments.yaml")
        (target / "templates").mkdir(parents=True, exist_ok=True)
        for template in sorted((ROOT / "templates").glob("*.j2")):
            shutil.copy2(template, target / "templates" / template.name)


setup(cmdclass={"build_py": BuildWithStarter})
