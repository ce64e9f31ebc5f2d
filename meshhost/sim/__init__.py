"""Deterministic simulator: real sans-IO cores, virtual time, one seeded PRNG."""

from meshhost.sim.cluster import build_cluster, swim_factory, wait_for_one_view
from meshhost.sim.host import SimHost
from meshhost.sim.invariants import SwimInvariants, one_view, view_disagreements
from meshhost.sim.loop import Simulator
from meshhost.sim.network import (
    Cut,
    LinkModel,
    NetworkModel,
    exponential_latency,
    fixed_latency,
    uniform_latency,
)
from meshhost.sim.partitions import cut_groups, random_groups, views_split
from meshhost.sim.placement import host_placements, placement_disagreements, true_placement
from meshhost.sim.run import run_seeded, seeds

__all__ = [
    "Cut",
    "LinkModel",
    "NetworkModel",
    "SimHost",
    "Simulator",
    "SwimInvariants",
    "build_cluster",
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
