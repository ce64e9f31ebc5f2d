"""Application manifests: a validated subset of wasmCloud wadm's OAM format.

A manifest describes one application: its actors, how many instances of each
run and on which hosts (by host labels), and which built-in capability
providers each actor is linked to. It is written in YAML by a person, so every
mistake is reported with ``file:line:column``, the field path (for example
``spec.components[1].traits[0].properties.replicas``) and what to do.

The accepted subset (see ``docs/manifests.md`` for the user guide)::

    apiVersion: core.oam.dev/v1beta1          # exactly this
    kind: Application                         # exactly this
    metadata:
      name: my-app                            # letters, digits, '-', '_'
      annotations:
        version: v0.0.1                       # required, not "latest"
        description: "..."                    # optional; other annotations kept
      labels: {...}                           # optional, kept
    spec:
      components:
        - name: echo
          type: actor                         # or "component" (wadm >= 0.10 name)
          properties:
            image: ./build/echo_s.wasm        # local path or file:// URL
            id: M...                          # optional; checked against the claims
            sha256: ...                       # optional; checked against the file
          traits:
            - type: spreadscaler              # or daemonscaler (per matching host)
              properties:
                instances: 4                  # "replicas" (wadm 0.x) also accepted
                spread:
                  - name: east
                    requirements: {zone: east}
                    weight: 80                # default 100
            - type: linkdef
              properties:
                target: httpserver            # a capability component, or a contract id
                values: {PORT: "8080"}
        - name: httpserver
          type: capability
          properties:
            contract: wasmcloud:httpserver    # or inferred from a known image name
            image: wasmcloud.azurecr.io/httpserver:0.17.0   # never pulled
            link_name: default

Decisions (wadm differences):

* meshhost is offline: actor images are local files. A registry reference is
  refused with a message saying so. The file is read at parse time: it must
  exist and be a WebAssembly module; its SHA-256 is recorded so every host
  (and a changed file) is recognised, and ``inspect_image`` may give the
  actor's ``M…`` id from its signed claims.
* Capability providers are built into every host. A ``capability`` component
  names the built-in by ``contract`` (or a well-known image name such as
  ``kvredis``/``httpserver``); its image is never downloaded. A contract
  without a built-in provider is refused. Scalers on a capability have no
  effect (warning).
* wadm 0.10+ ``link`` traits (WIT namespaces/packages) and named ``config``
  are refused with a hint; ``linkdef`` is the 0.x equivalent meshhost runs.
* Unknown fields are errors (with "did you mean" for near misses), duplicate
  YAML keys are errors, component names must be unique.

The result is an immutable :class:`Manifest`. :meth:`Manifest.canonical`
gives the canonical JSON bytes stored in the directory and hashed;
:func:`decode_manifest` reads them back (validating again, since they come
from peers).

The model itself (:class:`Manifest` and its parts, the limits) is in
:mod:`meshhost.apps.model`; the walk that validates it in
:mod:`meshhost.apps.validator`, built on the typed, positioned reads of
:mod:`meshhost.apps.fieldreader` and the image checks of
:mod:`meshhost.apps.images`. This module is the entry point and exports the
model's names too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from meshhost.apps.model import (
    API_VERSION,
    BUILTIN_CONTRACTS,
    DEFAULT_LINK_NAME,
    DEFAULT_SPREAD_WEIGHT,
    KIND,
    LATEST_VERSION,
    MAX_CANONICAL_BYTES,
    MAX_COMPONENTS,
    MAX_IMAGE_BYTES,
    MAX_INSTANCES,
    MAX_INSTANCES_PER_HOST,
    MAX_LABEL_CHARS,
    MAX_MAP_ITEMS,
    MAX_NAME_CHARS,
    MAX_SPREADS,
    MAX_TEXT_CHARS,
    MAX_TRAITS,
    MAX_WEIGHT,
    Component,
    ComponentType,
    Linkdef,
    Manifest,
    Pairs,
    Scaler,
    ScalerKind,
    Spread,
    split_by_weight,
)
from meshhost.apps.validator import InspectImage, Validator
from meshhost.apps.yamlsource import MAX_MANIFEST_BYTES, compose_text, from_python
from meshhost.errors import ManifestError, ManifestTooLarge, StoredManifestInvalid

__all__ = [
    "API_VERSION",
    "BUILTIN_CONTRACTS",
    "DEFAULT_LINK_NAME",
    "DEFAULT_SPREAD_WEIGHT",
    "KIND",
    "LATEST_VERSION",
    "MAX_CANONICAL_BYTES",
    "MAX_COMPONENTS",
    "MAX_IMAGE_BYTES",
    "MAX_INSTANCES",
    "MAX_INSTANCES_PER_HOST",
    "MAX_LABEL_CHARS",
    "MAX_MAP_ITEMS",
    "MAX_NAME_CHARS",
    "MAX_SPREADS",
    "MAX_TEXT_CHARS",
    "MAX_TRAITS",
    "MAX_WEIGHT",
    "Component",
    "ComponentType",
    "InspectImage",
    "Linkdef",
    "Manifest",
    "Pairs",
    "Scaler",
    "ScalerKind",
    "Spread",
    "actor_id_from_claims",
    "decode_manifest",
    "load_manifest",
    "parse_manifest",
    "split_by_weight",
]


# --- public entry points -------------------------------------------------------------


def parse_manifest(
    data: bytes | str,
    *,
    source: str = "<manifest>",
    base_dir: Path | None = None,
    check_images: bool = True,
    inspect_image: InspectImage | None = None,
) -> Manifest:
    """Parse and validate a YAML (or JSON) manifest.

    ``source`` names the file in error messages; relative image paths are
    resolved against ``base_dir`` (default: the current directory). With
    ``check_images`` the actor files are read, checked to be WebAssembly and
    hashed. Raises :class:`ManifestError` (or :class:`ManifestTooLarge`)
    describing the first problem found.
    """
    root = compose_text(data, source)
    return Validator(source, base_dir, check_images, inspect_image).manifest(root)


def load_manifest(path: str | Path, **options: Any) -> Manifest:
    """Read ``path`` and :func:`parse_manifest` it (images relative to its folder)."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_MANIFEST_BYTES:
            raise ManifestTooLarge(
                f"the manifest is {size} bytes; the limit is {MAX_MANIFEST_BYTES} bytes "
                "(split it into several applications)",
                source=str(path),
            )
        data = path.read_bytes()
    except OSError as exc:
        raise ManifestError(
            f"cannot read the manifest: {exc.strerror or exc}", source=str(path)
        ) from None
    options.setdefault("base_dir", path.resolve().parent)
    return parse_manifest(data, source=str(path), **options)


def actor_id_from_claims(module: bytes) -> str:
    """The ``M…`` subject of the module's wascap claims (for ``inspect_image``).

    Nothing is verified here (the host verifies before running); an unsigned
    or malformed module raises the identity layer's ClaimsError, which the
    parser reports at the image field.
    """
    from meshhost.identity.claims import extract_claims

    return extract_claims(module).subject


def decode_manifest(data: bytes, source: str = "<directory>") -> Manifest:
    """Decode canonical bytes written by :meth:`Manifest.canonical` (maybe by a peer).

    Validates again without reading images. Raises only
    :class:`StoredManifestInvalid` (a ``DecodeError``).
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise StoredManifestInvalid(f"{source}: stored manifest is not bytes")
    if len(data) > MAX_CANONICAL_BYTES:
        raise StoredManifestInvalid(f"{source}: stored manifest is over {MAX_CANONICAL_BYTES} B")
    try:
        document = json.loads(bytes(data).decode("utf-8"))
        return Validator(source, None, False, None).manifest(from_python(document))
    except (ValueError, RecursionError) as exc:
        raise StoredManifestInvalid(f"{source}: stored manifest is not valid JSON: {exc}") from None
    except ManifestError as exc:
        raise StoredManifestInvalid(f"stored manifest is invalid: {exc}") from None
