"""Your own scenario: a partition of a chosen shape, then heal; how long until
every host agrees again on membership and on where the application runs?

N LAN hosts form one lattice and run for 5 s.  --groups gives the shape:
that many random hosts per group, every group cut from every other for
--cut seconds (--one-way: only traffic from an earlier group to a later one
is dropped); hosts in no group are a bridge all groups still reach.  Then
the cut is removed.  Each host computes the desired placement of a small
application (12 instances spread over zones a and b, plus a key-value link)
from its own SWIM view, with the production compute_placement.

Columns, one row per seed (virtual seconds; "never": not within --horizon):
  views split      each group had declared every other group's hosts dead
  off placement    hosts whose own placement differed from the true one
                   (over the running hosts) just before the heal
  one view s       heal -> every host sees exactly the running hosts alive
  placement s      heal -> every host computes the true placement
                   (same instances, same link writers)
  checks           invariant checks run on every event (any failure aborts
                   with SEED=<seed> in the message)

Usage: python simulations/custom_partition.py [--hosts 30] [--groups 10,20]
       [--cut 60] [--one-way] [--seeds N] [--seed-base S]
"""

import time
from functools import partial

from _common import parser, report_wall, seconds, seed_range, table, whole, whole_list

from meshhost.config import PROFILES
from meshhost.control import Manifest, parse_manifest
from meshhost.sim import (
    build_cluster,
    cut_groups,
    one_view,
    placement_disagreements,
    random_groups,
    run_seeded,
    views_split,
)

APP = """
apiVersion: core.oam.dev/v1beta1
kind: Application
metadata: {name: web, annotations: {version: v1}}
spec:
  components:
    - name: front
      type: actor
      properties: {image: ./front.wasm}
      traits:
        - type: spreadscaler
          properties:
            instances: 12
            spread:
              - {name: a, requirements: {zone: a}, weight: 50}
              - {name: b, requirements: {zone: b}, weight: 50}
        - type: linkdef
          properties: {target: wasmcloud:keyvalue}
"""
STEP_S = 0.25
"""How often the convergence conditions are checked after the heal."""


def run(
    seed: int, n: int, sizes: list[int], cut_s: float, one_way: bool, horizon_s: float
) -> list[object]:
    """One seeded run; returns its table row."""
    apps: list[Manifest] = [parse_manifest(APP, check_images=False)]
    labels = {i: {"zone": "ab"[i % 2]} for i in range(n)}
    sim, inv = build_cluster(seed, n, PROFILES["lan"]().membership)
    sim.run_for(5.0)
    groups = random_groups(sim, sizes)
    cut_groups(sim, groups, one_way=one_way)
    sim.run_for(cut_s)
    split = views_split(sim, groups)
    off = placement_disagreements(sim, apps, labels)
    sim.heal()
    healed = sim.now
    view_s = place_s = None
    while sim.now - healed <= horizon_s and (view_s is None or place_s is None):
        if view_s is None and one_view(sim):
            view_s = sim.now - healed
        if place_s is None and placement_disagreements(sim, apps, labels) == 0:
            place_s = sim.now - healed
        sim.run_for(STEP_S)
    checks = inv.checks if inv else 0
    return [seed, "yes" if split else "no", off, _seconds(view_s), _seconds(place_s), checks]


def _seconds(value: float | None) -> object:
    return "never" if value is None else value


def main() -> None:
    p = parser(__doc__, seeds=1)
    p.add_argument("--hosts", type=whole(2), default=30, help="hosts (default 30)")
    p.add_argument(
        "--groups", type=whole_list(1), default=[10, 20], help="group sizes (default 10,20)"
    )
    p.add_argument("--cut", type=seconds, default=60.0, help="seconds cut (default 60)")
    p.add_argument("--one-way", action="store_true", help="drop only earlier -> later groups")
    p.add_argument("--horizon", type=seconds, default=120.0, help="seconds to wait after the heal")
    args = p.parse_args()
    if len(args.groups) < 2:
        p.error("--groups: one group cuts nothing; give two or more sizes (others bridge them)")
    if sum(args.groups) > args.hosts:
        p.error(f"--groups: {sum(args.groups)} hosts in groups, but --hosts is {args.hosts}")
    started = time.perf_counter()
    rows = [
        run_seeded(
            partial(
                run,
                n=args.hosts,
                sizes=args.groups,
                cut_s=args.cut,
                one_way=args.one_way,
                horizon_s=args.horizon,
            ),
            seed,
        )
        for seed in seed_range(args)
    ]
    bridge = args.hosts - sum(args.groups)
    shape = " | ".join(map(str, args.groups)) + (f" + {bridge} bridging" if bridge else "")
    kind = "one-way" if args.one_way else "symmetric"
    print(f"{args.hosts} LAN hosts, {kind} cut {shape} for {args.cut:g} s, then healed\n")
    headers = ["seed", "views split", "off placement", "one view s", "placement s", "checks"]
    print(table(headers, rows))
    report_wall(started)


if __name__ == "__main__":
    main()
