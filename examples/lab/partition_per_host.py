"""Partition of the last MINORITY hosts, per host: the simulated side of meshhost lab.

The same schedule `meshhost lab run` gives real hosts (settle, cut, heal,
wait for one view), with the same per-host observations (suspect_s,
detect_s, all_dead_s, heal_s, false_dead), so this sweep's
observations.csv compares directly with a lab run's real/observations.csv:
`meshhost lab compare SWEEP_OUT LAB_OUT/real`.
"""

from meshhost.lab.real.simrun import simulate
from meshhost.lab.real.spec import scenario_from_mapping

PARAMS = {"hosts": [10], "minority": [3], "cut_s": [6.0], "profile": ["local"]}
SEEDS = 10
METRICS = ["suspect_s", "detect_s", "heal_s"]
X = "cut_s"
FIELDS = ("host", "side", "suspect_s", "detect_s", "all_dead_s", "heal_s", "false_dead")


def run(
    seed,
    hosts=10,
    minority=3,
    cut_s=6.0,
    profile="local",
    one_way=False,
    settle_s=2.0,
    horizon_s=30.0,
):
    spec = scenario_from_mapping(
        {
            "hosts": hosts,
            "minority": minority,
            "cut_s": cut_s,
            "profile": profile,
            "one_way": one_way,
            "settle_s": settle_s,
            "horizon_s": horizon_s,
        },
        "partition_per_host",
        __file__,
    )
    return [{k: row[k] for k in FIELDS} for row in simulate(spec, seed)]
