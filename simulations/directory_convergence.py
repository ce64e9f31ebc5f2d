"""Directory convergence: conflicting config writes on both sides of a cut, then heal

Each host runs the production directory as its SWIM delegate.  A random
`minority` of the hosts is cut off for `cut_s`; meanwhile `writes` random
hosts each write one of `keys` config keys, so both sides write the same
keys.  After the heal: `converge_s`, seconds until every host holds the same
entries (missing: not within 120 s); `states_at_heal`, distinct states just
before it; then the directory checker (one state, last writer wins) judges
the result: a violation fails the seed.

    meshhost sim run simulations/directory_convergence.py --seeds 20
"""

from meshhost.config import PROFILES
from meshhost.lab.dirsim import partition_writes

PARAMS = {"n": [10, 30], "minority": [1, 5], "cut_s": [30], "writes": [20], "keys": [3]}
SEEDS = 5
METRICS = ["converge_s", "states_at_heal", "directory_valid"]


def run(seed, n=10, minority=5, cut_s=30.0, writes=20, keys=3):
    cfg = PROFILES["lan"]().membership
    return partition_writes(seed, n, cfg, minority=minority, cut_s=cut_s, writes=writes, keys=keys)
