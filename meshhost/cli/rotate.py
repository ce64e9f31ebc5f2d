"""``meshhost lattice rotate`` and ``meshhost lattice keyring``: the lattice secret, live.

A rotation has three steps, each run on every live host and confirmed by
every one of them before the next starts (as Consul's ``keyring -install``,
``-use``, ``-remove``; proto/spec/keyring.md, "Rotation without downtime"):

1. ``install``: every host accepts the new secret (still seals with the old);
2. ``use``: every host seals and dials with the new one (still accepts the old);
3. ``remove``: every host forgets the old one; a host holding only it is a stranger.

Each host writes its secret file before it acknowledges, so a restart keeps
the step.  ``--step all`` (the default) runs the three in order with a new
secret; a failed step stops the rotation with the hosts that did not answer
(every step is idempotent: run the same command again once they are back).
The ops are in :mod:`meshhost.control.keyops`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import trio

from meshhost.cli.hostclient import Signer, host_client, host_options
from meshhost.cli.output import PlainTable, emit_json, fail, fails_cleanly, json_option, stdout
from meshhost.cli.secret import lattice_group
from meshhost.control.api import ControlClient
from meshhost.control.keyops import key_id
from meshhost.datadir import CONTROL_SOCKET, default_data_dir, write_private
from meshhost.errors import ControlError, LocalProtocolError, MeshError
from meshhost.identity import short_id
from meshhost.identity.keyring import decode_secret, encode_secret, generate_secret

STEPS = ("install", "use", "remove")
LIVE = ("alive", "suspect")
"""Member states a step must reach: a suspect host may be alive and must not be skipped."""


async def _live_hosts(client: ControlClient) -> tuple[list[str], list[str]]:
    """(live host ids, ids of known hosts that are not live) as the local host sees them."""
    rows = await client.request("hosts")
    live = [r["id"] for r in rows if r["state"] in LIVE]
    gone = [r["id"] for r in rows if r["state"] not in LIVE]
    return live, gone


async def _on_every_host(
    client: ControlClient, op: str, timeout_s: float, **args: Any
) -> tuple[dict[str, dict[str, Any]], dict[str, str], list[str]]:
    """Run ``op`` on every live host at once: (views by host, errors by host, gone hosts)."""
    live, gone = await _live_hosts(client)
    views: dict[str, dict[str, Any]] = {}
    errors: dict[str, str] = {}

    async def one(host: str) -> None:
        try:
            with trio.fail_after(timeout_s):
                views[host] = await client.request(op, host=host, **args)
        except trio.TooSlowError:
            errors[host] = f"no answer within {timeout_s:g} s"
        except (ControlError, MeshError, OSError) as exc:
            errors[host] = str(exc)

    async with trio.open_nursery() as nursery:
        for host in live:
            nursery.start_soon(one, host)
    return views, errors, gone


def _check(
    step: str, views: dict[str, dict[str, Any]], key: str, retired: list[str]
) -> dict[str, str]:
    """Hosts whose keyring after ``step`` is not what the step promises, with why."""
    bad: dict[str, str] = {}
    for host, view in views.items():
        if step == "install" and key not in view["keys"]:
            bad[host] = f"key {key} not installed"
        elif step == "use" and view["primary"] != key:
            bad[host] = f"primary is {view['primary']}, not {key}"
        elif step == "remove" and any(k in view["keys"] for k in retired):
            bad[host] = f"still holds {', '.join(k for k in retired if k in view['keys'])}"
    return bad


async def _step(
    client: ControlClient, step: str, key: str, timeout_s: float, as_json: bool,
    *, secret: str | None, retired: list[str],
) -> dict[str, Any]:  # fmt: skip
    """Run one step on every live host; fail (exit 1) unless every one acknowledged."""
    op = "keyring_" + step
    views: dict[str, dict[str, Any]] = {}
    errors: dict[str, str] = {}
    gone: list[str] = []
    if step == "install":
        assert secret is not None
        views, errors, gone = await _on_every_host(client, op, timeout_s, secret=secret)
    elif step == "use":
        views, errors, gone = await _on_every_host(client, op, timeout_s, key=key)
    else:
        for old in retired:
            views, more, gone = await _on_every_host(client, op, timeout_s, key=old)
            errors.update(more)
    errors.update(_check(step, views, key, retired))
    acked = sorted(h for h in views if h not in errors)
    unsaved = sorted(h for h, v in views.items() if v.get("saved") is False)
    record = {"step": step, "key": key, "acknowledged": acked, "failed": errors,
              "not_saved": unsaved, "not_live": gone}  # fmt: skip
    if not as_json:
        total = len(acked) + len(errors)
        mark = "[green]ok[/]" if not errors else "[red]FAILED[/]"
        stdout.print(f"{mark} {step:<8} key {key}: {len(acked)}/{total} live hosts acknowledged")
        for host, why in sorted(errors.items()):
            stdout.print(f"   host {short_id(host)}: {why}", markup=False)
        for host in unsaved:
            stdout.print(
                f"   host {short_id(host)} has no secret file (its secret came from "
                "MESHHOST_LATTICE_SECRET): update that before it restarts",
                markup=False,
            )
    if errors:
        if as_json:
            emit_json({"ok": False, "failed_step": record})
        fail(
            f"step {step!r} did not reach every live host ({', '.join(map(short_id, errors))}); "
            "nothing after it was done. Deal with what each host answered (above) and run the "
            "same command again: every step is safe to repeat"
        )
    return record


@lattice_group.command("rotate")
@click.option(
    "--step",
    type=click.Choice(["all", *STEPS]),
    default="all",
    show_default=True,
    help="Run one step only (install, use, remove) or all three in order.",
)
@click.option(
    "--new-secret",
    "new_secret_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="File holding the new secret (SL...); default: a new random one (install, all).",
)
@click.option("--key", "key_opt", help="Key id to use or remove (steps use, remove).")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the new secret to this file (0600), for hosts not running now.",
)
@click.option(
    "--timeout", "timeout_s", type=click.FloatRange(0.5, 600), default=30.0, show_default=True,
    help="Seconds each host has to acknowledge a step.",
)  # fmt: skip
@host_options
@json_option
@fails_cleanly
def rotate(
    step: str, new_secret_file: Path | None, key_opt: str | None, out: Path | None,
    timeout_s: float, data_dir: Path | None, lattice: str, as_json: bool,
) -> None:  # fmt: skip
    """Replace the lattice secret on every live host, with no downtime.

    Installs a new secret everywhere, switches every host to it, then retires
    the old one; each step must be acknowledged by every live host (and
    written to its secret file) before the next begins.
    """
    client = host_client(data_dir, lattice)
    _need_admin_key(data_dir, lattice)
    # Key ids depend on the lattice name: take the host's, not --lattice (which
    # only picks the default data dir).
    local = trio.run(lambda: client.request("keyring_list"))
    secret_text: str | None = None
    if step in ("all", "install"):
        if new_secret_file is not None:
            secret_text = new_secret_file.read_text(encoding="utf-8").strip()
        else:
            secret_text = encode_secret(generate_secret())
        key = key_id(decode_secret(secret_text), local["lattice"])
    elif key_opt:
        key = key_opt.lower()
    elif step == "use":
        raise click.UsageError(
            "--step use needs --key (the id `lattice rotate --step install` printed)"
        )
    else:  # remove: keep this host's primary, retire every other key
        key = local["primary"]
    if out is not None:
        if secret_text is None:
            raise click.BadParameter(
                "--out needs a step that installs a secret", param_hint="--out"
            )
        if out.exists():
            raise click.BadParameter(f"{out} exists; refusing to overwrite a secret")
        write_private(out, secret_text + "\n")

    async def run() -> list[dict[str, Any]]:
        done: list[dict[str, Any]] = []
        retired = [k for k in local["keys"] if k != key]
        if step == "remove" and key_opt:
            retired = [key_opt.lower()]
            if local["primary"] in retired:
                fail(f"key {local['primary']} is the primary; `--step use` another key first")
        for name in STEPS if step == "all" else (step,):
            done.append(await _step(client, name, key, timeout_s, as_json,
                                    secret=secret_text, retired=retired))  # fmt: skip
        return done

    done = trio.run(run)
    if as_json:
        emit_json({"ok": True, "key": key, "steps": done,
                   **({"written_to": str(out)} if out else {})})  # fmt: skip
    elif step in ("all", "remove"):
        stdout.print(f"the lattice uses key {key} only; its secret is in every host's secret file")


def _need_admin_key(data_dir: Path | None, lattice: str) -> None:
    """Fail in one line, before any host is asked or any file written, when the CLI has
    no operator key to sign the rotation with: otherwise every live host refuses the
    first step, each in its own line, and ``--out`` has left a secret nobody uses."""
    path = (data_dir if data_dir is not None else default_data_dir(lattice)) / CONTROL_SOCKET
    signer = Signer.for_host(path)
    if not signer.open and signer.pair is None:
        raise LocalProtocolError(
            "rotating the lattice secret needs an admin operator key: pass --operator-key "
            "FILE or set $MESHHOST_OPERATOR_KEY (`meshhost lattice new` stores one beside "
            "the secret)"
        )


@lattice_group.command("keyring")
@click.option(
    "--timeout", "timeout_s", type=click.FloatRange(0.5, 600), default=10.0, show_default=True,
    help="Seconds each host has to answer.",
)  # fmt: skip
@host_options
@json_option
@fails_cleanly
def keyring(timeout_s: float, data_dir: Path | None, lattice: str, as_json: bool) -> None:
    """List the lattice secrets (by key id) every live host holds."""
    client = host_client(data_dir, lattice)
    views, errors, gone = trio.run(lambda: _on_every_host(client, "keyring_list", timeout_s))
    if as_json:
        emit_json({"hosts": views, "failed": errors, "not_live": gone})
    else:
        table = PlainTable(title=f"{len(views)} host(s) answered")
        for column in ("HOST", "PRIMARY", "ACCEPTED", "SECRET FILE"):
            table.add_column(column)
        for host, view in sorted(views.items()):
            others = ", ".join(k for k in view["keys"] if k != view["primary"])
            table.add_row(host, view["primary"], others or "-", view["file"] or "(environment)")
        stdout.print(table)
        for host, why in sorted(errors.items()):
            stdout.print(f"host {short_id(host)} did not answer: {why}", markup=False)
    if errors:
        raise SystemExit(1)
