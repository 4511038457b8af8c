"""An earlier migration's module, for a later migration that builds its SQL from the earlier one's (the
KPI sums' functions: 0011, then 0015, 0028, 0029, 0030). Migration files are named by revision, not
importable by name, so they are loaded from the versions folder."""
import importlib.util
from pathlib import Path

VERSIONS = Path(__file__).with_name("versions")


def migration(name: str):
    """The module of versions/`name`.py (e.g. "0011_kpi_daily")."""
    spec = importlib.util.spec_from_file_location(f"gridpatrol_migration_{name}", VERSIONS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
