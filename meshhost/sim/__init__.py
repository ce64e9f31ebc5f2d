"""Deterministic simulator: real sans-IO cores, virtual time, one seeded PRNG.

Parameters a scenario can set (each documented in its module):

* protocol model: ``MembershipConfig`` switches ``lifeguard_awareness``,
  ``lifeguard_suspicion``, ``lifeguard_buddy``, ``lifeguard_nacks``,
  ``refute_at_once``, ``last_chance``, or a named model
  ``meshhost.config.membership_model("swim" | "memberlist" | "meshhost")``;
* lattice (``cluster.py``): ``build_cluster(seed, n, config, network=...,
  bootstrap="converged" | "merged" | "join", clock_skew_s=..., clock_drift=...)``;
  ``"converged"`` is O(n) over one shared view, fit for 10 000 hosts;
* network (``network.py``): ``LinkModel(latency, loss, duplicate, reorder,
  reorder_delay_s, burst=GilbertElliott(mean_good_s, mean_bad_s, loss_good,
  loss_bad))``, per link or default, and cuts;
* hosts (``loop.py``): ``crash``, ``restart(wipe_disk=)``, ``pause``,
  ``set_cpu(host, service_s, queue_limit)`` (a slow host);
* churn (``churn.py``): ``churn(sim, rate_per_s, until_s=, down_s=, leave=,
  wipe=, max_down=)``;
* observation: ``sim.observers`` (membership events), ``sim.packet_observers``
  (every datagram sent), ``probes.ProbeLog`` (pings and acks of one host,
  first detection in SWIM's synchronous and the real asynchronous sense).
"""

from meshhost.sim.churn import churn
from meshhost.sim.cluster import build_cluster, swim_factory, wait_for_one_view
from meshhost.sim.host import SimHost
from meshhost.sim.invariants import SwimInvariants, one_view, view_disagreements
from meshhost.sim.loop import Simulator
from meshhost.sim.network import (
    Cut,
    GilbertElliott,
    LinkModel,
    NetworkModel,
    exponential_latency,
    fixed_latency,
    uniform_latency,
)
from meshhost.sim.partitions import cut_groups, random_groups, views_split
from meshhost.sim.placement import host_placements, placement_disagreements, true_placement
from meshhost.sim.probes import ProbeLog
from meshhost.sim.run import run_seeded, seeds

__all__ = [
    "Cut",
    "GilbertElliott",
    "LinkModel",
    "NetworkModel",
    "ProbeLog",
    "SimHost",
    "Simulator",
    "SwimInvariants",
    "build_cluster",
    "churn",
    "cut_groups",
    "exponential_latency",
    "fixed_latency",
    "host_placements",
    "one_view",
    "placement_disagreements",
    "random_groups",
    "run_seeded",
    "seeds",
    "swim_factory",
    "true_placement",
    "uniform_latency",
    "view_disagreements",
    "views_split",
    "wait_for_one_view",
]
