"""Text from peers and users is printed as text, never read as rich markup."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from meshhost.cli.output import fails_cleanly
from meshhost.cli.upview import report
from meshhost.errors import ConfigError
from meshhost.host import decode_meta, encode_meta
from meshhost.membership import Member, MemberJoined, MemberState


def test_a_peer_label_with_markup_is_printed_verbatim(capsys: pytest.CaptureFixture[str]) -> None:
    member = Member(
        "N" + "A" * 55,
        ("127.0.0.1", 4000),
        MemberState.ALIVE,
        1,
        encode_meta({"zone": "[/oops]", "rack": "[bold]x"}),
    )
    report(MemberJoined(member), as_json=False)
    out = capsys.readouterr().out
    assert "rack=[bold]x zone=[/oops]" in out


@pytest.mark.parametrize(
    "meta",
    [
        {"labels": [1, 2]},
        {"labels": {"a": b"\xff", b"k": "v"}},
        {"labels": {"zone": {"x": 1}, "ok": "yes"}},
        [1],
    ],
)
@pytest.mark.parametrize("as_json", [False, True])
def test_a_peer_with_malformed_labels_is_reported_with_its_text_labels(
    capsys: pytest.CaptureFixture[str], meta: object, as_json: bool
) -> None:
    # Another meshhost version (or a bug) may gossip any msgpack as metadata;
    # `meshhost up` printing the join must not die on it.
    member = Member(
        "N" + "A" * 55,
        ("127.0.0.1", 4000),
        MemberState.ALIVE,
        1,
        msgpack.packb(meta, use_bin_type=True),
    )
    report(MemberJoined(member), as_json=as_json)
    out = capsys.readouterr().out
    assert "N" + "A" * 55 in out
    assert ("ok" in out) == ("ok" in str(meta))


@given(
    st.binary(max_size=200)
    | st.recursive(
        st.none() | st.integers(-(2**63), 2**64 - 1) | st.text(max_size=8) | st.binary(max_size=8),
        lambda inner: (
            st.lists(inner, max_size=3)
            | st.dictionaries(
                st.sampled_from(["labels", "x"]) | st.text(max_size=4), inner, max_size=3
            )
        ),
        max_leaves=10,
    ).map(lambda value: msgpack.packb(value, use_bin_type=True))
)
def test_any_metadata_decodes_to_text_labels_or_nothing(meta: bytes) -> None:
    decoded = decode_meta(meta)
    assert decoded == {} or set(decoded) == {"labels"}
    labels = decoded.get("labels", {})
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items())


def test_an_error_quoting_user_text_is_printed_verbatim(capsys: pytest.CaptureFixture[str]) -> None:
    @fails_cleanly
    def command() -> None:
        raise ConfigError("no config entry '[/x]' or '[red]y'")

    with pytest.raises(SystemExit) as info:
        command()
    assert info.value.code == 1
    assert "error: no config entry '[/x]' or '[red]y'" in capsys.readouterr().err


def test_actor_and_link_events_are_printed_too(capsys: pytest.CaptureFixture[str]) -> None:
    report(
        {
            "kind": "link_put",
            "actor": "M" + "B" * 55,
            "contract": "wasmcloud:keyvalue",
            "link_name": "[/default]",
        },
        as_json=False,
    )
    out = capsys.readouterr().out
    assert out.startswith("link_put")
    assert "contract=wasmcloud:keyvalue" in out and "link_name=[/default]" in out
