"""Directory spread over the real SWIM core at lattice scale (run by hand).

    python -m tests.sim.sim_spread [--hosts 1000] [--seed 1] [--loss 0.0]

Boots ``--hosts`` simulated hosts already acquainted, lets the boot-time
gossip (every host's alive and address) settle, then has host 0 start an
actor and prints when each fraction of the lattice lists it.  Takes minutes
of CPU at 1000 hosts, which is why the test suite runs 100
(``test_dir_sim.py``).  Target (issue 7): 99.9 % of 1000 hosts <= 2.0 s;
Serf's simulator gives 1.84 s for fan-out 3 every 200 ms.

Measured (seed 1, LAN profile, clocks skewed +-0.5 s): 99.9 % of 1000 hosts
in 0.92 s (50 % 0.52 s, 99 % 0.78 s); at 10 % loss 1.02 s (50 % 0.60 s).
About 13 minutes of CPU each, almost all of it booting and settling.
"""

from __future__ import annotations

import argparse
import time

from meshhost.sim.network import LinkModel
from tests.sim import test_dir_sim as mod


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--loss", type=float, default=0.0)
    parser.add_argument("--settle-s", type=float, default=140.0)
    args = parser.parse_args()
    mod.WARM_UP_S = args.settle_s
    started = time.time()
    lattice = mod.Lattice(args.hosts, seed=args.seed, skew_s=0.5)
    if args.loss:
        lattice.sim.network.default = LinkModel(loss=args.loss)
    booted = time.time()
    times = mod.spread_times(lattice, 0)
    n = args.hosts
    print(f"hosts {n}, seed {args.seed}, loss {args.loss:.0%}, reached {len(times)}")
    for fraction in (0.5, 0.9, 0.99, 0.999, 1.0):
        need = max(1, -(-int(fraction * n * 1000) // 1000))
        at = times[need - 1] if len(times) >= need else float("nan")
        print(f"  {fraction:6.1%} of hosts: {at:.2f} s")
    print(f"  (boot + settle {booted - started:.0f} s of CPU, spread {time.time() - booted:.0f} s)")


if __name__ == "__main__":
    main()
