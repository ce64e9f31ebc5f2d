"""Test configuration shared by the whole suite."""

import os
import signal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("dev", max_examples=100, deadline=None)
settings.register_profile(
    "ci",
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))

# A shell starts background jobs (`pytest ... &`, nohup in a script) with SIGINT
# ignored, and Python then leaves it ignored: Ctrl-C tests would send SIGINTs
# nobody receives (in-process, and in every child, which inherits the ignore).
# Handled here (not ignored), the child processes get the default again at exec.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session")
def modules(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, str]]:
    """Signed example actors (echo, kvcounter, sleeper), built once per session for
    every folder that starts `meshhost up` processes: name -> (path of the .wasm, actor id)."""
    from tests.lattice.processes.proc_lattice import build_modules

    return build_modules(tmp_path_factory.mktemp("modules"))
