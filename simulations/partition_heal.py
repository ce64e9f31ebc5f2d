"""Partition heal: seconds from removing a cut until every host has one view

After 5 s a random half (`side=half`) or a single host (`side=one`) is cut
from the rest for `cut_s`, both ways or one way (the minority's datagrams
to the majority are dropped, the other direction still works).  `heal_s`:
seconds from the heal to one view, multiples of 0.25 s (missing: not within
120 s).  `views_disturbed`: when the cut was removed, every host suspected
or had declared dead someone across it.

    meshhost sim run simulations/partition_heal.py --seeds 20
"""

from meshhost.config import PROFILES
from meshhost.sim.scenarios import partition_heal

PARAMS = {"n": [100], "side": ["half", "one"], "one_way": [False, True], "cut_s": [60]}
SEEDS = 5


def run(seed, n=100, side="half", one_way=False, cut_s=60.0, profile="lan"):
    minority = n // 2 if side == "half" else 1
    r = partition_heal(seed, n, PROFILES[profile]().membership, minority, one_way, cut_s=cut_s)
    return {"heal_s": r.heal_s, "views_disturbed": r.split_views}
