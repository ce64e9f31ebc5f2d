"""`up` warns when its unauthenticated HTTP listeners face the network."""

from types import SimpleNamespace

from meshhost.cli.host import security_warnings


def _host(metrics=None, dashboard=None):
    # allowed_issuers set: only the listener warnings are under test here
    state = SimpleNamespace(open=False, issuers=())  # a lattice with an admin key
    return SimpleNamespace(
        security=SimpleNamespace(state=lambda: state),
        config=SimpleNamespace(allowed_issuers=["A"]),
        metrics_addr=metrics,
        dashboard_addr=dashboard,
    )


def test_non_loopback_metrics_and_dashboard_warn():
    warnings = security_warnings(_host(("0.0.0.0", 9090), ("10.1.2.3", 8090)))
    assert len(warnings) == 2
    assert "0.0.0.0:9090" in warnings[0] and "--metrics" in warnings[0]
    assert "10.1.2.3:8090" in warnings[1] and "--dashboard" in warnings[1]


def test_loopback_listeners_do_not_warn():
    assert security_warnings(_host(("127.0.0.1", 9090), ("127.0.0.2", 8090))) == []
    assert security_warnings(_host()) == []
