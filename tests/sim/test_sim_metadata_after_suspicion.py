"""A suspicion must not stop the metadata it follows.

A host's alive carries its metadata; a suspicion about it carries only an
incarnation.  When a relay held the origin's new alive and then a suspicion
about it, the suspicion took the alive's place in the relay's broadcast
queue (one item per host, as memberlist keys by node name), and a host that
hears of the new incarnation from the suspicion first dropped the alive
that followed as stale: at 1000 hosts and 20 % loss, where suspicions never
stop, hosts missed the update until push-pull.

Here the relay r is stalled (its input waits in its inbox) while the
origin's new alive and then s's suspicion of the origin reach it; c hears
only through r, and push-pull is off, so c has the metadata only if r still
relays the alive after the suspicion and c takes it after the suspicion
(each half of the fix alone fails this test).
"""

from meshhost.config import MembershipConfig
from meshhost.membership.state import MemberState
from meshhost.sim import build_cluster

NEW = b"rev-2"


def test_metadata_queued_before_a_suspicion_still_spreads():
    # Many retransmits: the stalled r spends some of the alive's on indirect
    # probes of c it answers on resuming (sent while c is still cut off).
    cfg = MembershipConfig(push_pull_interval_s=3600.0, retransmit_mult=20)
    sim, _ = build_cluster(3, 4, cfg)
    o, r, c, s = sim.hosts
    sim.run_for(2.0)
    sim.partition([c], [o, s])  # c hears of o only through r
    # c may hear nothing r sends while reading its inbox: r's answers carry
    # whatever its queue held at that point of the inbox (before the
    # suspicion was read).
    quiet = sim.partition([c], [r])
    sim.pause(r, 8.0)
    resume_at = sim.now + 8.0
    sim.at(resume_at + 0.01, sim.heal, quiet)
    o.core.update_meta(NEW, o.local(sim.now))
    sim.pump(o)
    sim.run_for(2.0, stop=lambda: s.core.member(o.node_id).meta == NEW)
    assert s.core.member(o.node_id).meta == NEW
    sim.partition([o], [s])  # s's probes of o fail now: it suspects o
    sim.run_for(6.0, stop=lambda: s.core.member(o.node_id).state is MemberState.SUSPECT)
    assert s.core.member(o.node_id).state is MemberState.SUSPECT
    sim.run_for(0.5)  # s's gossip of the suspicion waits in r's inbox
    assert sim.now < resume_at, "the suspicion must reach r before it resumes"
    assert r.paused
    sim.partition([o], [r])  # o cannot refute to anyone
    sim.run_until(resume_at + 3.0)
    held = c.core.member(o.node_id)
    assert held.incarnation >= o.core.incarnation  # c heard of the new incarnation
    assert held.meta == NEW  # and got the metadata with it
