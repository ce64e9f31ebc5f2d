"""The transmit-limited broadcast queue."""

from meshhost.membership.broadcast import MAX_KEYLESS_ITEMS, TransmitLimitedQueue


def test_each_item_is_sent_retransmit_limit_times_then_dropped():
    q = TransmitLimitedQueue(2, lambda: 9)  # limit 2 * ceil(log10(10)) = 2
    q.queue(b"a" * 10, "n1")
    assert q.get(0, 100) == [b"a" * 10]
    assert q.get(0, 100) == [b"a" * 10]
    assert q.get(0, 100) == []
    assert len(q) == 0


def test_newer_state_for_the_same_host_replaces_older():
    q = TransmitLimitedQueue(4, lambda: 10)
    q.queue(b"alive-1", "n1")
    q.queue(b"suspect-1", "n1")
    q.queue(b"other", "n2")
    assert sorted(q.get(0, 1000)) == [b"other", b"suspect-1"]
    assert len(q) == 2


def test_fewest_transmits_first_then_newest_first():
    q = TransmitLimitedQueue(4, lambda: 100)
    q.queue(b"old", "a")
    assert q.get(0, 100) == [b"old"]
    q.queue(b"new1", "b")
    q.queue(b"new2", "c")
    # Room for one: the newest never-sent item goes first.
    assert q.get(0, 4) == [b"new2"]
    assert q.get(0, 4) == [b"new1"]
    assert q.get(0, 3) == [b"old"]


def test_items_that_do_not_fit_are_skipped_not_lost():
    q = TransmitLimitedQueue(4, lambda: 100)
    q.queue(b"x" * 50, "big")
    q.queue(b"y" * 5, "small")
    assert q.get(2, 20) == [b"y" * 5]
    assert q.get(2, 60) == [b"x" * 50, b"y" * 5]


def test_overhead_counts_per_item_and_max_items_caps_a_packet():
    q = TransmitLimitedQueue(4, lambda: 100)
    for i in range(10):
        q.queue(bytes([i]) * 3, f"n{i}")
    assert len(q.get(7, 50)) == 5  # 10 bytes each
    assert len(q.get(0, 1000, max_items=2)) == 2


def test_keyless_items_are_bounded():
    q = TransmitLimitedQueue(4, lambda: 10)
    for i in range(MAX_KEYLESS_ITEMS + 10):
        q.queue(i.to_bytes(4, "big"))
    assert len(q) == MAX_KEYLESS_ITEMS


def test_limit_follows_the_lattice_size():
    size = [1]
    q = TransmitLimitedQueue(1, lambda: size[0])
    q.queue(b"m", "k")
    size[0] = 999  # limit 1 * 3
    sent = 0
    while q.get(0, 10):
        sent += 1
    assert sent == 3


def test_drop_removes_only_the_item_under_that_key():
    q = TransmitLimitedQueue(4, lambda: 10)
    q.queue(b"alive-x", "alive:x")
    q.queue(b"suspect-x", "x")
    q.drop("x")
    q.drop("nothing here")
    assert q.get(0, 1000) == [b"alive-x"]
