"""Where manifests live in the lattice-wide directory, as pure functions.

Layout (three namespaces of the LWW-HLC directory map; values are bytes):

========================  =====================================  =========================
namespace                 key                                    value
========================  =====================================  =========================
``control.manifests``     ``<name>@<version>``                   :meth:`Manifest.canonical`
``control.deployments``   ``<name>``                             version, UTF-8
``control.links``         ``<actor>|<contract>|<link name>``      :func:`encode_link`
========================  =====================================  =========================

``apply`` stores the version and marks it deployed (two writes; a reader
that sees the deployment before the manifest simply waits for it).
``delete NAME`` removes the deployment and every stored version; ``delete
NAME --version V`` removes one version and, if it was the deployed one, the
deployment. Names cannot contain ``@``, so ``name@version`` splits at the
first ``@``. ``control.links`` records the links the reconciler wrote for
applications (the host also writes the real link definition for the
capabilities layer), so it can tell its own links from hand-made ones when an
application goes away.

The same name and version with different content is refused
(:class:`ManifestVersionConflict`): versions are immutable, as in wadm.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from meshhost.apps.manifest import decode_manifest
from meshhost.apps.model import MAX_CANONICAL_BYTES, Manifest
from meshhost.apps.placement import LinkSpec
from meshhost.errors import (
    ManifestNotFound,
    ManifestTooLarge,
    ManifestVersionConflict,
    StoredManifestInvalid,
)

__all__ = [
    "DEPLOYMENTS_NS",
    "LINKS_NS",
    "MANIFESTS_NS",
    "AppSummary",
    "DirectoryDelete",
    "DirectoryPut",
    "app_summaries",
    "apply_writes",
    "decode_link",
    "delete_writes",
    "deployed_manifests",
    "deployed_names",
    "encode_link",
    "link_record_key",
    "manifest_key",
    "split_manifest_key",
]

MANIFESTS_NS = "control.manifests"
DEPLOYMENTS_NS = "control.deployments"
LINKS_NS = "control.links"
MAX_LINK_RECORD_BYTES = 16 * 1024
"""A link record holds at most 64 values of 4 KiB text in the manifest; real ones are tiny."""


@dataclass(frozen=True, slots=True)
class DirectoryPut:
    namespace: str
    key: str
    value: bytes


@dataclass(frozen=True, slots=True)
class DirectoryDelete:
    namespace: str
    key: str


DirectoryWrite = DirectoryPut | DirectoryDelete


def manifest_key(name: str, version: str) -> str:
    return f"{name}@{version}"


def split_manifest_key(key: str) -> tuple[str, str]:
    """``name@version`` -> ``(name, version)``; raises StoredManifestInvalid without ``@``."""
    name, sep, version = key.partition("@")
    if not sep or not name or not version:
        raise StoredManifestInvalid(f"manifest key {key!r} is not name@version")
    return name, version


def apply_writes(manifest: Manifest, stored: bytes | None) -> list[DirectoryWrite]:
    """Directory writes that store and deploy ``manifest``.

    ``stored`` is what the directory holds under the same name and version
    (None if nothing). Raises :class:`ManifestVersionConflict` if that is
    different content: bump the version to change an application.
    """
    canonical = manifest.canonical()
    if len(canonical) > MAX_CANONICAL_BYTES:
        raise ManifestTooLarge(
            f"application {manifest.name!r} is {len(canonical)} bytes in stored form; the "
            f"limit is {MAX_CANONICAL_BYTES} (split it into several applications)"
        )
    if stored is not None and bytes(stored) != canonical:
        raise ManifestVersionConflict(
            f"application {manifest.name!r} version {manifest.version!r} is already stored "
            "with different content; give the changed manifest a new version "
            "(metadata.annotations.version)",
            field="metadata.annotations.version",
        )
    return [
        DirectoryPut(MANIFESTS_NS, manifest_key(manifest.name, manifest.version), canonical),
        DirectoryPut(DEPLOYMENTS_NS, manifest.name, manifest.version.encode()),
    ]


def delete_writes(
    name: str,
    stored_keys: Iterable[str],
    deployed_version: str | None,
    version: str | None = None,
) -> list[DirectoryWrite]:
    """Directory writes for ``app delete NAME [--version V]``.

    ``stored_keys`` are the keys present in :data:`MANIFESTS_NS`. Raises
    :class:`ManifestNotFound` when nothing matches.
    """
    versions = sorted(v for n, v in (k.partition("@")[::2] for k in stored_keys) if n == name and v)
    if version is not None:
        versions = [v for v in versions if v == version]
    if not versions and deployed_version is None:
        raise ManifestNotFound(
            f"no application {name!r}"
            + (f" version {version!r}" if version else "")
            + " is stored; 'meshhost app list' shows what is"
        )
    if version is not None and not versions:
        raise ManifestNotFound(f"application {name!r} has no stored version {version!r}")
    writes: list[DirectoryWrite] = []
    if deployed_version is not None and (version is None or version == deployed_version):
        writes.append(DirectoryDelete(DEPLOYMENTS_NS, name))
    writes.extend(DirectoryDelete(MANIFESTS_NS, manifest_key(name, v)) for v in versions)
    return writes


def deployed_manifests(
    manifests: Iterable[tuple[str, bytes]],
    deployments: Iterable[tuple[str, bytes]],
) -> tuple[list[Manifest], list[str]]:
    """The manifests to reconcile, from the two namespaces' ``items()``.

    Returns ``(manifests sorted by name, problems)``. A deployment whose
    manifest has not arrived yet, or a record a peer wrote badly, is skipped
    and described in ``problems`` instead of stopping the others (pass the
    names of such deployments to ``reconcile(keep_links_of=...)``; see
    :func:`deployed_names`).
    """
    stored = dict(manifests)
    result: list[Manifest] = []
    problems: list[str] = []
    for name, raw_version in sorted(deployments):
        try:
            version = bytes(raw_version).decode("utf-8")
        except (UnicodeDecodeError, TypeError):
            problems.append(f"deployment record of {name!r} is not UTF-8 text")
            continue
        key = manifest_key(name, version)
        if key not in stored:
            problems.append(
                f"{name!r} version {version!r} is deployed but its manifest has not arrived yet"
            )
            continue
        try:
            manifest = decode_manifest(stored[key], source=f"{MANIFESTS_NS}/{key}")
        except StoredManifestInvalid as exc:
            problems.append(str(exc))
            continue
        if (manifest.name, manifest.version) != (name, version):
            problems.append(f"{MANIFESTS_NS}/{key} holds {manifest.name}@{manifest.version}")
            continue
        result.append(manifest)
    return result, problems


def deployed_names(deployments: Iterable[tuple[str, bytes]]) -> set[str]:
    """Names of every deployed application, readable manifest or not."""
    return {name for name, _ in deployments}


@dataclass(frozen=True, slots=True)
class AppSummary:
    """One line of ``meshhost app list``."""

    name: str
    deployed_version: str | None
    versions: tuple[str, ...]


def app_summaries(
    manifest_keys: Iterable[str], deployments: Iterable[tuple[str, bytes]]
) -> list[AppSummary]:
    """Every stored or deployed application, sorted by name (versions sorted as text)."""
    versions: dict[str, list[str]] = {}
    for key in manifest_keys:
        name, sep, version = key.partition("@")
        if sep and name and version:
            versions.setdefault(name, []).append(version)
    deployed: dict[str, str | None] = {}
    for name, raw in deployments:
        try:
            deployed[name] = bytes(raw).decode("utf-8")
        except (UnicodeDecodeError, TypeError):
            deployed[name] = None
    return [
        AppSummary(name, deployed.get(name), tuple(sorted(versions.get(name, []))))
        for name in sorted(set(versions) | set(deployed))
    ]


def link_record_key(link: LinkSpec) -> str:
    """``actor|contract|link name`` (none of the three can contain ``|``)."""
    return "|".join(link.key)


def encode_link(link: LinkSpec) -> bytes:
    """Canonical JSON of a manifest-owned link (for :data:`LINKS_NS`)."""
    document = {
        "app": link.app,
        "source": link.source,
        "actor_id": link.actor_id,
        "contract_id": link.contract_id,
        "link_name": link.link_name,
        "values": dict(link.values),
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8"
    )


def decode_link(data: bytes) -> LinkSpec:
    """Inverse of :func:`encode_link`; raises only :class:`StoredManifestInvalid`."""
    if not isinstance(data, bytes | bytearray) or len(data) > MAX_LINK_RECORD_BYTES:
        raise StoredManifestInvalid("link record is not bytes or is too large")
    try:
        document = json.loads(bytes(data).decode("utf-8"))
    except (ValueError, RecursionError):
        raise StoredManifestInvalid("link record is not valid JSON") from None
    if not isinstance(document, dict):
        raise StoredManifestInvalid("link record is not a JSON object")
    texts = ("app", "source", "contract_id", "link_name")
    if set(document) != {*texts, "actor_id", "values"}:
        raise StoredManifestInvalid(f"link record has fields {sorted(document)}")
    if not all(isinstance(document[k], str) for k in texts):
        raise StoredManifestInvalid("link record fields must be text")
    actor_id, values = document["actor_id"], document["values"]
    if actor_id is not None and not isinstance(actor_id, str):
        raise StoredManifestInvalid("link record actor_id must be text or null")
    if not isinstance(values, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in values.items()
    ):
        raise StoredManifestInvalid("link record values must map text to text")
    return LinkSpec(
        document["app"],
        document["source"],
        actor_id,
        document["contract_id"],
        document["link_name"],
        tuple(sorted(values.items())),
    )
