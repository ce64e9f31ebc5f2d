"""Text from peers and users is printed as text, never read as rich markup."""

from __future__ import annotations

import msgpack
import pytest

from meshhost.cli.host import _report
from meshhost.cli.output import fails_cleanly
from meshhost.errors import ConfigError
from meshhost.host import encode_meta
from meshhost.membership import Member, MemberJoined, MemberState


def test_a_peer_label_with_markup_is_printed_verbatim(capsys: pytest.CaptureFixture[str]) -> None:
    member = Member("N" + "A" * 55, ("127.0.0.1", 4000), MemberState.ALIVE, 1,
                    encode_meta({"zone": "[/oops]", "rack": "[bold]x"}))
    _report(MemberJoined(member), as_json=False)
    out = capsys.readouterr().out
    assert "rack=[bold]x zone=[/oops]" in out


@pytest.mark.parametrize("meta", [{"labels": [1, 2]}, {"labels": {"a": b"\xff", b"k": "v"}},
                                  {"labels": {"zone": {"x": 1}, "ok": "yes"}}, [1]])
@pytest.mark.parametrize("as_json", [False, True])
def test_a_peer_with_malformed_labels_is_reported_with_its_text_labels(
    capsys: pytest.CaptureFixture[str], meta: object, as_json: bool
) -> None:
    # Another meshhost version (or a bug) may gossip any msgpack as metadata;
    # `meshhost up` printing the join must not die on it.
    member = Member("N" + "A" * 55, ("127.0.0.1", 4000), MemberState.ALIVE, 1,
                    msgpack.packb(meta, use_bin_type=True))
    _report(MemberJoined(member), as_json=as_json)
    out = capsys.readouterr().out
    assert "N" + "A" * 55 in out
    assert ("ok" in out) == ("ok" in str(meta))


def test_an_error_quoting_user_text_is_printed_verbatim(capsys: pytest.CaptureFixture[str]) -> None:
    @fails_cleanly
    def command() -> None:
        raise ConfigError("no config entry '[/x]' or '[red]y'")

    with pytest.raises(SystemExit) as info:
        command()
    assert info.value.code == 1
    assert "error: no config entry '[/x]' or '[red]y'" in capsys.readouterr().err


def test_actor_and_link_events_are_printed_too(capsys: pytest.CaptureFixture[str]) -> None:
    _report({"kind": "link_put", "actor": "M" + "B" * 55, "contract": "wasmcloud:keyvalue",
             "link_name": "[/default]"}, as_json=False)
    out = capsys.readouterr().out
    assert out.startswith("link_put")
    assert "contract=wasmcloud:keyvalue" in out and "link_name=[/default]" in out
