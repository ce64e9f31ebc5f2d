"""Shared helpers of the application-op tests (a unique name: importable from both test files)."""

from __future__ import annotations

import itertools
import textwrap
from collections.abc import Callable
from pathlib import Path

from meshhost.apps.placement import HostView
from meshhost.directory import Directory

ROOT = Path(__file__).resolve().parents[3]
BUILD = ROOT / "examples" / "kvcounter" / "build.py"

HOSTS = ("NAPPSHOSTA", "NAPPSHOSTB", "NAPPSHOSTC")
LABELS = {
    "NAPPSHOSTA": {"zone": "east"},
    "NAPPSHOSTB": {"zone": "east"},
    "NAPPSHOSTC": {"zone": "west"},
}

MANIFEST = textwrap.dedent(
    """\
    apiVersion: core.oam.dev/v1beta1
    kind: Application
    metadata:
      name: kvcounter
      annotations:
        version: v0.1.0
        description: Counts requests
    spec:
      components:
        - name: counter
          type: actor
          properties:
            image: ./kvcounter.wasm
          traits:
            - type: spreadscaler
              properties:
                instances: 4
                spread:
                  - name: east
                    requirements:
                      zone: east
                    weight: 75
                  - name: west
                    requirements:
                      zone: west
                    weight: 25
            - type: linkdef
              properties:
                target: httpserver
                values:
                  PORT: "8081"
        - name: httpserver
          type: capability
          properties:
            contract: wasmcloud:httpserver
    """
)


class Lattice:
    """Three in-memory directories with labels; ``sync()`` runs push-pull between all."""

    def __init__(self) -> None:
        ticks = itertools.count(1)
        self.clock_s = 1_700_000_000.0
        self.dirs = {
            h: Directory(h, clock=lambda: self.clock_s + next(ticks) / 1000) for h in HOSTS
        }
        self.dead: set[str] = set()
        for host, directory in self.dirs.items():
            directory.set_labels(LABELS[host])
        self.sync()

    def sync(self) -> None:
        for a, b in itertools.permutations(self.dirs.values(), 2):
            b.merge_remote_state(a.host_id, a.local_state())

    def members(self, host: str) -> Callable[[], list[HostView]]:
        def view() -> list[HostView]:
            labels = self.dirs[host].host_labels()
            return [
                HostView.of(h, labels.get(h), "dead" if h in self.dead else "alive")
                for h in sorted(labels)
            ]

        return view
