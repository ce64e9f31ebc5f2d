"""A lab scenario: how many hosts, which cut, for how long, and what runs meanwhile.

A scenario is a YAML mapping (every key optional but ``hosts``)::

    title: 3 of 10 hosts cut off for 6 s, then healed
    hosts: 10            # real hosts, one network namespace each (2 .. 40)
    profile: local       # timing profile of every host (lan, local, wan)
    minority: 3          # the last MINORITY hosts are cut from the others
    one_way: false       # true: only the minority's packets to the majority are lost
    settle_s: 2          # after the lattice formed, before the cut
    cut_s: 6             # how long the cut stays
    horizon_s: 30        # after the heal: how long to wait for one view
    loss_percent: 0      # random loss on every host's eth0 (needs nft; else skipped)
    calls_every_s: 0.5   # the workload: a kvcounter call this often (0: none)
    call_deadline_s: 3   # each call's deadline
    sim_seeds: 10        # seeds of the simulated counterpart

Latency is not a fault here: without ``tc netem`` a latency fault would need a
userspace proxy in every path, which is not built; the simulator's latency
models stay simulator-only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from meshhost.errors import LabError

__all__ = ["LabScenario", "load_lab_scenario"]

PROFILE_NAMES = ("lan", "local", "wan")
DEFAULT_MINORITY = 3
MAX_HOSTS = 40
"""Hosts are real processes on this machine: more than this is a mistake, not a lab."""


@dataclass(frozen=True, slots=True)
class LabScenario:
    """One partition scenario; see the module docstring for each field."""

    name: str
    title: str
    hosts: int = 10
    profile: str = "local"
    minority: int = DEFAULT_MINORITY
    one_way: bool = False
    settle_s: float = 2.0
    cut_s: float = 6.0
    horizon_s: float = 30.0
    loss_percent: float = 0.0
    calls_every_s: float = 0.5
    call_deadline_s: float = 3.0
    sim_seeds: int = 10

    def params(self) -> dict[str, Any]:
        """The parameters written beside every observation (the CSV's parameter columns)."""
        data = asdict(self)
        for key in ("name", "title", "sim_seeds", "calls_every_s", "call_deadline_s"):
            data.pop(key)
        return data

    def host_names(self) -> list[str]:
        return [f"h{i + 1:02d}" for i in range(self.hosts)]

    def minority_names(self) -> list[str]:
        return self.host_names()[self.hosts - self.minority :]


_NUMBERS = {
    "settle_s": (0.0, 600.0),
    "cut_s": (0.1, 600.0),
    "horizon_s": (1.0, 600.0),
    "loss_percent": (0.0, 99.0),
    "calls_every_s": (0.0, 60.0),
    "call_deadline_s": (0.1, 60.0),
}


def _number(spec: dict[str, Any], key: str, where: str) -> float:
    value = spec[key]
    low, high = _NUMBERS[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise LabError(f"{where}: {key} must be a number from {low:g} to {high:g}, got {value!r}")
    return float(value)


def _whole(spec: dict[str, Any], key: str, low: int, high: int, where: str) -> int:
    value = spec[key]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise LabError(f"{where}: {key} must be a whole number from {low} to {high}, got {value!r}")
    return value


def scenario_from_mapping(spec: object, name: str, where: str) -> LabScenario:
    """Validate a parsed scenario; LabError names the key and what it must be."""
    if not isinstance(spec, dict):
        raise LabError(f"{where}: a lab scenario is a YAML mapping (hosts:, minority:, cut_s: ...)")
    known = set(LabScenario.__dataclass_fields__) - {"name"}
    unknown = sorted(map(str, set(spec) - known))
    if unknown:
        raise LabError(
            f"{where}: unknown keys {', '.join(unknown)} (known: {', '.join(sorted(known))})"
        )
    if "hosts" not in spec:
        raise LabError(f"{where}: say how many hosts (hosts: 10)")
    fields: dict[str, Any] = {"name": name}
    fields["hosts"] = _whole(spec, "hosts", 2, MAX_HOSTS, where)
    if "minority" in spec:
        fields["minority"] = _whole(spec, "minority", 1, fields["hosts"] - 1, where)
    elif fields["hosts"] <= DEFAULT_MINORITY:  # the default would leave no majority
        fields["minority"] = 1
    if "sim_seeds" in spec:
        fields["sim_seeds"] = _whole(spec, "sim_seeds", 0, 1000, where)
    for key in _NUMBERS:
        if key in spec:
            fields[key] = _number(spec, key, where)
    if "profile" in spec:
        if spec["profile"] not in PROFILE_NAMES:
            raise LabError(
                f"{where}: profile must be one of {', '.join(PROFILE_NAMES)}, "
                f"got {spec['profile']!r}"
            )
        fields["profile"] = spec["profile"]
    if "one_way" in spec:
        if not isinstance(spec["one_way"], bool):
            raise LabError(f"{where}: one_way must be true or false, got {spec['one_way']!r}")
        fields["one_way"] = spec["one_way"]
    title = spec.get("title")
    if title is not None and not isinstance(title, str):
        raise LabError(f"{where}: title must be text, got {title!r}")
    fields["title"] = title or name
    return LabScenario(**fields)


def load_lab_scenario(path: str | Path) -> LabScenario:
    """Read a YAML lab scenario; LabError says what is wrong with it."""
    import yaml

    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise LabError(f"cannot read lab scenario {path}: {exc.strerror or exc}") from None
    try:
        spec = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        from meshhost.lab.scenario import yaml_problem

        raise LabError(yaml_problem(path, exc)) from None
    return scenario_from_mapping(spec, p.stem, str(path))
