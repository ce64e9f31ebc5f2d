"""The broadcast measure counts a host that had declared the origin dead.

At 1000 hosts and 20 % loss the broadcast figure counted only 873 of 999
hosts as reached: hosts that had falsely declared the origin dead learn its
new metadata as a ``MemberJoined``, which the measure ignored (it took only
``MemberUpdated``).  Here one host declares the origin dead behind a cut,
then the cut heals while the origin publishes: it must count as reached.
(The origin is cut from everyone: a cut from one host alone is refuted
through the others before the suspicion expires.)
"""

from meshhost.config import MembershipConfig
from meshhost.membership.events import MemberJoined
from meshhost.membership.state import MemberState
from meshhost.sim import build_cluster
from meshhost.sim.scenarios import watch_meta


def test_a_host_that_declared_the_origin_dead_counts_when_it_learns_the_news():
    sim, _ = build_cluster(5, 6, MembershipConfig(), invariants=False)
    origin, stray = sim.hosts[0], sim.hosts[1]
    sim.run_for(2.0)
    sim.partition([origin], sim.hosts[1:])
    sim.run_for(60.0, stop=lambda: stray.core.member(origin.node_id).state is MemberState.DEAD)
    assert stray.core.member(origin.node_id).state is MemberState.DEAD
    joined = []
    sim.observers.append(
        lambda s, h, ev: (
            joined.append(h.index)
            if type(ev) is MemberJoined and ev.member.id == origin.node_id
            else None
        )
    )
    seen = watch_meta(sim, origin, b"rev-2")
    sim.heal()
    origin.core.update_meta(b"rev-2", origin.local(sim.now))
    sim.pump(origin)
    sim.run_for(30.0, stop=lambda: len(seen) == 5)
    assert stray.index in joined  # it learned the news as a rejoin, not an update
    assert set(seen) == {1, 2, 3, 4, 5}
