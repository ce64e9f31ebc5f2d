"""Configuration: profiles, TOML, environment and flag precedence, validation."""

import json
from pathlib import Path

import pytest

from meshhost import config
from meshhost.errors import ConfigError


def test_lan_profile_uses_memberlist_numbers() -> None:
    cfg = config.load(environ={})
    assert cfg.profile == "lan"
    m = cfg.membership
    assert (m.probe_interval_s, m.probe_timeout_s, m.indirect_checks) == (1.0, 0.5, 3)
    assert (m.suspicion_mult, m.retransmit_mult, m.gossip_interval_s) == (4, 4, 0.2)


def test_precedence_file_then_env_then_flags(tmp_path: Path) -> None:
    path = tmp_path / "host.toml"
    path.write_text(
        'profile = "local"\nlattice = "lab"\nport = 7000\n'
        "[membership]\nprobe_interval_s = 2.0\ngossip_nodes = 5\n"
    )
    env = {"MESHHOST_PORT": "7001", "MESHHOST_MEMBERSHIP__GOSSIP_NODES": "4"}
    cfg = config.load(path, environ=env, overrides={"port": 7002, "lattice": None})
    assert cfg.profile == "local"
    assert cfg.lattice == "lab"
    assert cfg.port == 7002
    assert cfg.membership.probe_interval_s == 2.0
    assert cfg.membership.gossip_nodes == 4
    assert cfg.membership.probe_timeout_s == 0.2  # from the local profile


def test_labels_and_seeds_parse_from_environment() -> None:
    env = {"MESHHOST_LABELS": "zone=a,gpu=yes", "MESHHOST_SEEDS": "127.0.0.1:7000, 127.0.0.2:7000"}
    cfg = config.load(environ=env)
    assert cfg.labels == (("zone", "a"), ("gpu", "yes"))
    assert cfg.seeds == ("127.0.0.1:7000", "127.0.0.2:7000")


@pytest.mark.parametrize(
    ("toml", "match"),
    [
        ('profile = "fast"', "unknown profile 'fast'"),
        ("colour = 1", "setting 'colour' is unknown"),
        ("port = 70000", "port must be within"),
        ('port = "x"', r"bad.toml: setting 'port' must be a whole number, got text \('x'\)"),
        ("port = 7946.5", "setting 'port' must be a whole number, got a number"),
        ("labels = [1]", 'labels.*each label must be "key=value" text, got a whole number'),
        ("seeds = 5", "setting 'seeds' must be a list or comma-separated text"),
        ("mdns = 2", "setting 'mdns' must be true or false"),
        ("lattice = 5", "setting 'lattice' must be text"),
        (
            '[membership]\nprobe_interval_s = "fast"',
            "'membership.probe_interval_s' must be a number",
        ),
        ('profile = ["lan"]', "unknown profile"),
        ("[membership]\nprobe_timeout_s = 5.0", "probe_timeout_s must be below"),
        ("[membership]\ngossip_nodes = 0", "gossip_nodes must be > 0"),
        ("membership = 3", "'membership' is a section: set its fields"),
        ("port = ", "not valid TOML"),
        ("port = " + "[" * 3000 + "]" * 3000, "nests values too deeply"),
        ('lattice = ""', "lattice name"),
    ],
)
def test_invalid_files_get_clear_errors(tmp_path: Path, toml: str, match: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError, match=match):
        config.load(path, environ={})


def test_missing_file_and_bad_environment() -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        config.load("/nonexistent/meshhost.toml", environ={})
    with pytest.raises(ConfigError, match=r"MESHHOST_MDNS must be true or false, got text"):
        config.load(environ={"MESHHOST_MDNS": "maybe"})


@pytest.mark.parametrize(
    ("environ", "match"),
    [
        ({"MESHHOST_PORT": "abc"}, r"^MESHHOST_PORT must be a whole number, got text \('abc'\)$"),
        (
            {"MESHHOST_MEMBERSHIP__PROBE_INTERVAL_S": "1s"},
            r"^MESHHOST_MEMBERSHIP__PROBE_INTERVAL_S must be a number",
        ),
        (
            {"MESHHOST_MEMBERSHIP__PROBE_INTERVAL_S": "nan"},
            r"^MESHHOST_MEMBERSHIP__PROBE_INTERVAL_S must be a number",
        ),
        (
            {"MESHHOST_MEMBERSHIP": "3"},
            r"^MESHHOST_MEMBERSHIP is a section: set its fields, e\.g\. "
            r"MESHHOST_MEMBERSHIP__PROBE_INTERVAL_S",
        ),
        ({"MESHHOST_COLOUR": "red"}, r"^MESHHOST_COLOUR is unknown"),
    ],
)
def test_environment_errors_name_the_variable_in_plain_words(
    environ: dict[str, str], match: str
) -> None:
    with pytest.raises(ConfigError, match=match) as caught:
        config.load(environ=environ)
    assert "invalid literal" not in str(caught.value)
    assert "could not convert" not in str(caught.value)


def test_old_bind_host_key_still_works_with_a_deprecation_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "host.toml"
    path.write_text('bind_host = "127.0.0.5"\n')
    with caplog.at_level("WARNING", logger="meshhost.config"):
        cfg = config.load(path, environ={})
    assert cfg.bind == "127.0.0.5"
    assert "setting 'bind_host' is deprecated; it is now called 'bind'" in caplog.text
    path.write_text('bind = "127.0.0.6"\n')
    assert config.load(path, environ={}).bind == "127.0.0.6"
    assert config.load(environ={"MESHHOST_BIND": "127.0.0.7"}).bind == "127.0.0.7"


def test_actor_calls_policy_comes_from_any_source_and_is_checked() -> None:
    assert config.load(environ={}).actor_calls == "linked"
    assert config.load(environ={"MESHHOST_ACTOR_CALLS": "open"}).actor_calls == "open"
    assert config.load(overrides={"actor_calls": "open"}, environ={}).actor_calls == "open"
    with pytest.raises(ConfigError, match="actor_calls must be 'linked' or 'open'"):
        config.load(overrides={"actor_calls": "everyone"}, environ={})


@pytest.mark.parametrize("bind", ["localhost", "999.1.1.1", "::1", "bad host"])
def test_bind_must_be_an_ipv4_address(bind: str) -> None:
    with pytest.raises(ConfigError, match=r"bind address .* is not an IPv4 address"):
        config.load(overrides={"bind": bind}, environ={})


def test_actor_limit_defaults_come_from_any_source_and_are_checked(tmp_path: Path) -> None:
    from meshhost.errors import InvalidActorLimits

    assert config.load(environ={}).actor_limits == config.ActorLimitsConfig(
        max_memory_mib=64, max_cpu_time_ms=2000, max_call_time_ms=30_000, max_instances=1000
    )
    path = tmp_path / "meshhost.toml"
    path.write_text("[actor_limits]\nmax_memory_mib = 128\n")
    env = {"MESHHOST_ACTOR_LIMITS__MAX_CPU_TIME_MS": "500"}
    limits = config.load(path, environ=env).actor_limits
    assert (limits.max_memory_mib, limits.max_cpu_time_ms) == (128, 500)
    with pytest.raises(
        InvalidActorLimits,
        match="max_instances must be a whole number of instances from 1 to 1000, got 0",
    ):
        config.load(environ={"MESHHOST_ACTOR_LIMITS__MAX_INSTANCES": "0"})
    with pytest.raises(ConfigError, match="MAX_MEMORY_MIB must be a whole number"):
        config.load(environ={"MESHHOST_ACTOR_LIMITS__MAX_MEMORY_MIB": "lots"})
    path.write_text("[actor_limits]\nmax_memory = 1\n")
    with pytest.raises(ConfigError, match="unknown; known settings: max_call_time_ms"):
        config.load(path, environ={})


def test_allowed_issuers_come_from_any_source_and_must_be_account_keys(tmp_path: Path) -> None:
    from meshhost.identity import nkeys

    issuer = nkeys.KeyPair(nkeys.Prefix.ACCOUNT, bytes(32)).public_key
    actor = nkeys.KeyPair(nkeys.Prefix.MODULE, bytes(32)).public_key
    assert config.load(overrides={"allowed_issuers": (issuer,)}, environ={}).allowed_issuers == (
        issuer,
    )
    toml = tmp_path / "host.toml"
    toml.write_text(f'allowed_issuers = ["{issuer}"]\n')
    assert config.load(toml, environ={}).allowed_issuers == (issuer,)
    with pytest.raises(ConfigError, match="not an account key"):
        config.load(overrides={"allowed_issuers": (actor,)}, environ={})


@pytest.mark.parametrize(
    "name",
    ["../../etc", "..", ".hidden", "a/b", "a\\b", "", "x" * 65, "lab space", "läb", "a\x00b"],
)
def test_unsafe_lattice_names_are_refused_everywhere_they_enter(tmp_path: Path, name: str) -> None:
    """A lattice name becomes a directory: `--lattice ../../etc` once gave a data dir outside
    the per-user one (found by h12d).  TOML, environment, the data-dir helper and every
    CLI --lattice flag refuse it with a typed error saying what is allowed."""
    from click.testing import CliRunner

    from meshhost.cli import main
    from meshhost.datadir import default_data_dir
    from meshhost.errors import InvalidLatticeName

    rule = "1 to 64 ASCII letters, digits"
    path = tmp_path / "host.toml"
    path.write_text(f"lattice = {json.dumps(name)}\n")  # a TOML basic string
    with pytest.raises(InvalidLatticeName, match=rule):
        config.load(path, environ={})
    if name and "\x00" not in name:
        with pytest.raises(InvalidLatticeName, match=rule):
            config.load(environ={"MESHHOST_LATTICE": name})
    with pytest.raises(InvalidLatticeName, match=rule):
        default_data_dir(name, environ={"XDG_DATA_HOME": str(tmp_path)})
    if not name or "\x00" in name:
        return  # a shell cannot pass these as arguments
    env = {"XDG_DATA_HOME": str(tmp_path), "MESHHOST_DATA_DIR": ""}
    for args in (
        ["up", "--lattice", name],
        ["lattice", "new", "--lattice", name, "--install"],
        ["hosts", "--lattice", name],
        ["operator", "list", "--lattice", name],
    ):
        result = CliRunner().invoke(main, args, env=env)
        assert result.exit_code == 2, (args, result.output)
        assert rule in result.output
    result = CliRunner().invoke(main, ["hosts"], env={**env, "MESHHOST_LATTICE": name})
    assert result.exit_code == 2 and rule in result.output
    assert not any(tmp_path.rglob("*.secret"))


@pytest.mark.parametrize("name", ["default", "prod-eu.1", "a_b", "A" * 64, "9"])
def test_safe_lattice_names_pass(tmp_path: Path, name: str) -> None:
    from meshhost.datadir import default_data_dir

    assert config.load(environ={"MESHHOST_LATTICE": name}).lattice == name
    assert (
        default_data_dir(name, environ={"XDG_DATA_HOME": str(tmp_path)})
        == tmp_path / "meshhost" / name
    )
