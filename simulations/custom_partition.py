"""Your own scenario: a cut of any shape, then heal; when do hosts agree again?

N LAN hosts form one lattice and run for 5 s.  `sizes` gives the shape:
that many random hosts per group, every group cut from every other for
`cut_s` (`one_way`: only traffic from an earlier group to a later one is
dropped); hosts in no group bridge them.  Then the cut is removed.  Each host
computes the placement of a small application (12 instances over zones a
and b, plus a key-value link) from its own SWIM view with the production
compute_placement.  Observations: `views_split` (each group declared every
other group's hosts dead), `off_placement` (hosts whose placement differed
from the true one just before the heal), `one_view_s` / `placement_s`
(heal -> one view / the true placement everywhere; missing: not within
`horizon_s`), `checks` (invariant checks run).

    meshhost sim run simulations/custom_partition.py --param 'sizes=[10,10,10],[14,14]'
"""

from meshhost.apps import parse_manifest
from meshhost.config import PROFILES
from meshhost.sim import (
    build_cluster,
    cut_groups,
    one_view,
    placement_disagreements,
    random_groups,
    views_split,
)

PARAMS = {"n": [30], "sizes": [[10, 20]], "cut_s": [60], "one_way": [False]}
SEEDS = 3
STEP_S = 0.25  # how often the conditions are checked after the heal
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


def run(seed, n=30, sizes=(10, 20), cut_s=60.0, one_way=False, horizon_s=120.0):
    if len(sizes) < 2 or sum(sizes) > n:
        raise ValueError(f"sizes: give two or more groups of at most {n} hosts in all, not {sizes}")
    apps = [parse_manifest(APP, check_images=False)]
    labels = {i: {"zone": "ab"[i % 2]} for i in range(n)}
    sim, inv = build_cluster(seed, n, PROFILES["lan"]().membership)
    sim.run_for(5.0)
    groups = random_groups(sim, list(sizes))
    cut_groups(sim, groups, one_way=one_way)
    sim.run_for(cut_s)
    split, off = views_split(sim, groups), placement_disagreements(sim, apps, labels)
    sim.heal()
    healed, view_s, place_s = sim.now, None, None
    while sim.now - healed <= horizon_s and (view_s is None or place_s is None):
        if view_s is None and one_view(sim):
            view_s = sim.now - healed
        if place_s is None and placement_disagreements(sim, apps, labels) == 0:
            place_s = sim.now - healed
        sim.run_for(STEP_S)
    return {
        "views_split": split,
        "off_placement": off,
        "one_view_s": view_s,
        "placement_s": place_s,
        "checks": inv.checks,
    }
