"""The manifest validator: an OAM document's node tree to a :class:`Manifest`.

:class:`Validator` walks the tree :mod:`~meshhost.apps.yamlsource`
composed, once, with :class:`~meshhost.apps.fieldreader.FieldReader`'s typed
readers, and applies the rules of the accepted wadm subset (documented in
:mod:`meshhost.apps.manifest`): names, versions, component types, the
built-in providers capabilities name, scalers and their spreads, linkdefs
(resolving actor-to-actor targets to the target's key), and the wadm
features meshhost refuses with a hint. The first problem raises
:class:`~meshhost.errors.ManifestError`; advice is collected in ``warnings``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import NoReturn

from meshhost.apps.fieldreader import FieldReader, suggest
from meshhost.apps.images import image_path, read_image
from meshhost.apps.model import (
    API_VERSION,
    BUILTIN_CONTRACTS,
    DEFAULT_LINK_NAME,
    DEFAULT_SPREAD_WEIGHT,
    KIND,
    LATEST_VERSION,
    MAX_COMPONENTS,
    MAX_INSTANCES,
    MAX_INSTANCES_PER_HOST,
    MAX_LABEL_CHARS,
    MAX_NAME_CHARS,
    MAX_SPREADS,
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
from meshhost.apps.yamlsource import Node
from meshhost.config import LIMIT_BOUNDS
from meshhost.errors import MeshError

__all__ = ["InspectImage", "Validator"]

InspectImage = Callable[[bytes], str | None]
"""Given a module's bytes, return its actor ``M…`` id from its claims (or None)."""

# Last path segment of well-known wasmCloud provider images -> built-in contract,
# so wadm manifests that omit ``contract`` (wadm >= 0.10) still resolve.
_IMAGE_CONTRACTS = {
    "kvredis": "wasmcloud:keyvalue",
    "keyvalue-redis": "wasmcloud:keyvalue",
    "kv-redis": "wasmcloud:keyvalue",
    "keyvalue": "wasmcloud:keyvalue",
    "httpserver": "wasmcloud:httpserver",
    "http-server": "wasmcloud:httpserver",
    "httpclient": "wasmcloud:httpclient",
    "http-client": "wasmcloud:httpclient",
    "nats_messaging": "wasmcloud:messaging",
    "nats-messaging": "wasmcloud:messaging",
    "messaging-nats": "wasmcloud:messaging",
    "messaging": "wasmcloud:messaging",
    "logging": "wasmcloud:builtin:logging",
}

_NAME_RE = re.compile(r"[A-Za-z0-9_-]+\Z")
_VERSION_RE = re.compile(r"[\x21-\x7e]+\Z")
_CONTRACT_RE = re.compile(r"[a-z0-9_.-]+(:[a-z0-9_.-]+)+\Z")
_ACTOR_ID_RE = re.compile(r"M[A-Z2-7]{55}\Z")
_SHA256_RE = re.compile(r"[0-9a-f]{64}\Z")
_ACTOR_TARGET = "\x00actor:"  # placeholder contract of an actor-call link until resolved

_CONFIG_HINT = {
    "config": "named config is not supported by meshhost; put provider settings "
    "in the actor's linkdef 'values'",
}


def _resolve_actor_links(app: str, components: tuple[Component, ...]) -> tuple[Component, ...]:
    by_name = {c.name: c for c in components}
    resolved = []
    for component in components:
        links = tuple(
            replace(
                link,
                contract_id=by_name[link.target].actor_id or f"{app}/{link.target}",
            )
            if link.contract_id.startswith(_ACTOR_TARGET)
            else link
            for link in component.linkdefs
        )
        resolved.append(replace(component, linkdefs=links))
    return tuple(resolved)


class Validator(FieldReader):
    """Walks the node tree once; the first problem raises ManifestError."""

    def __init__(
        self,
        source: str,
        base_dir: Path | None,
        check_images: bool,
        inspect_image: InspectImage | None,
    ) -> None:
        super().__init__(source)
        self.base_dir = base_dir
        self.check_images = check_images
        self.inspect_image = inspect_image
        self.warnings: list[str] = []
        self.capabilities: dict[str, tuple[str, str, str]] = {}

    def name(self, node: Node, path: str, what: str) -> str:
        value = self.text(node, path, what=f"a {what} name (text)")
        if not value:
            self.fail(node, path, f"the {what} name is empty")
        if len(value) > MAX_NAME_CHARS:
            self.fail(node, path, f"the {what} name is longer than {MAX_NAME_CHARS} characters")
        if not _NAME_RE.match(value):
            self.fail(
                node,
                path,
                f"{what} name {value!r} may contain only letters, digits, '-' and '_'",
            )
        return value

    # -- the document

    def manifest(self, root: Node) -> Manifest:
        if root.kind != "map":
            self.fail(
                root,
                "",
                f"a manifest is a mapping with apiVersion, kind, metadata and "
                f"spec; got {root.type_name()}",
            )
        top = self.fields(root, "", required=("apiVersion", "kind", "metadata", "spec"))
        api = self.text(top["apiVersion"], "apiVersion", what="text")
        if api != API_VERSION:
            self.fail(top["apiVersion"], "apiVersion", f"must be {API_VERSION!r}, got {api!r}")
        kind = self.text(top["kind"], "kind", what="text")
        if kind != KIND:
            self.fail(top["kind"], "kind", f"must be {KIND!r}, got {kind!r}")
        name, version, description, annotations, labels = self.metadata(top["metadata"])
        components = _resolve_actor_links(name, self.spec(top["spec"]))
        return Manifest(
            name=name,
            version=version,
            components=components,
            description=description,
            annotations=annotations,
            labels=labels,
            warnings=tuple(self.warnings),
        )

    def metadata(self, node: Node) -> tuple[str, str, str, Pairs, Pairs]:
        meta = self.fields(node, "metadata", required=("name",), optional=("annotations", "labels"))
        name = self.name(meta["name"], "metadata.name", "application")
        if "annotations" not in meta:
            self.fail(
                node,
                "metadata.annotations.version",
                "required annotation 'version' is missing; add "
                "'annotations: {version: v0.0.1}' under metadata",
            )
        annotations = dict(
            self.string_map(meta["annotations"], "metadata.annotations", "annotations")
        )
        if "version" not in annotations:
            self.fail(
                meta["annotations"],
                "metadata.annotations.version",
                "required annotation 'version' is missing (for example 'version: v0.0.1')",
            )
        version = annotations.pop("version")
        version_node = next(v for k, v in meta["annotations"].value if k.raw == "version")
        if not _VERSION_RE.match(version) or len(version) > 128:
            self.fail(
                version_node,
                "metadata.annotations.version",
                f"version {version!r} must be 1-128 printable characters without spaces",
            )
        if version == LATEST_VERSION:
            self.fail(
                version_node,
                "metadata.annotations.version",
                "'latest' is not a version; give a concrete one such as v0.0.1",
            )
        description = annotations.pop("description", "")
        labels: Pairs = ()
        if "labels" in meta:
            labels = self.string_map(
                meta["labels"], "metadata.labels", "labels", value_limit=MAX_LABEL_CHARS
            )
        return name, version, description, tuple(sorted(annotations.items())), labels

    def spec(self, node: Node) -> tuple[Component, ...]:
        spec = self.fields(
            node,
            "spec",
            required=("components",),
            hints={
                "policies": "wadm policies are not supported by meshhost; remove 'policies'",
            },
        )
        items = self.sequence(spec["components"], "spec.components", "components", MAX_COMPONENTS)
        if not items:
            self.fail(
                spec["components"], "spec.components", "an application needs at least one component"
            )
        seen: dict[str, int] = {}
        raw: list[tuple[Node, str, ComponentType, dict[str, Node]]] = []
        for index, item in enumerate(items):
            path = f"spec.components[{index}]"
            fields = self.fields(
                item,
                path,
                required=("name", "type", "properties"),
                optional=("traits",),
                what=" describing a component",
            )
            name = self.name(fields["name"], f"{path}.name", "component")
            if name in seen:
                self.fail(
                    fields["name"],
                    f"{path}.name",
                    f"duplicate component name {name!r} (first defined on line "
                    f"{seen[name]}); component names must be unique",
                )
            seen[name] = fields["name"].line
            type_text = self.text(fields["type"], f"{path}.type", what="a component type")
            if type_text in ("actor", "component"):
                ctype = ComponentType.ACTOR
            elif type_text == "capability":
                ctype = ComponentType.CAPABILITY
            else:
                self.fail(
                    fields["type"],
                    f"{path}.type",
                    f"unknown component type {type_text!r}"
                    f"{suggest(type_text, ['actor', 'component', 'capability'])} "
                    "(expected actor, component or capability)",
                )
            raw.append((item, name, ctype, fields))
        # Providers first: an actor's linkdef may name one defined further down.
        for index, (_, name, ctype, fields) in enumerate(raw):
            if ctype is ComponentType.CAPABILITY:
                props_path = f"spec.components[{index}].properties"
                props = self.fields(
                    fields["properties"],
                    props_path,
                    optional=("image", "contract", "link_name", "id"),
                    hints=_CONFIG_HINT,
                )
                self.capabilities[name] = self.capability(props, props_path, fields)
        types = {name: ctype for _, name, ctype, _ in raw}
        components = []
        for index, (_, name, ctype, fields) in enumerate(raw):
            path = f"spec.components[{index}]"
            components.append(self.component(path, name, ctype, fields, types))
        return tuple(components)

    def component(
        self,
        path: str,
        name: str,
        ctype: ComponentType,
        fields: dict[str, Node],
        others: dict[str, ComponentType],
    ) -> Component:
        props_path = f"{path}.properties"
        if ctype is ComponentType.ACTOR:
            props = self.fields(
                fields["properties"],
                props_path,
                required=("image",),
                optional=("id", "sha256", *LIMIT_BOUNDS),
                hints=_CONFIG_HINT,
            )
            image, sha256, actor_id = self.actor_image(props, props_path)
            limits = tuple(
                (key, self.integer(props[key], f"{props_path}.{key}", low, high, f"{key} ({unit})"))
                for key, (low, high, unit) in sorted(LIMIT_BOUNDS.items())
                if key in props
            )
            contract_id, link_name = None, DEFAULT_LINK_NAME
        else:
            image, contract_id, link_name = self.capabilities[name]
            sha256 = actor_id = None
            limits = ()
        scaler = None
        linkdefs: list[Linkdef] = []
        trait_nodes: tuple[Node, ...] = ()
        if "traits" in fields:
            trait_nodes = self.sequence(fields["traits"], f"{path}.traits", "traits", MAX_TRAITS)
        for t_index, trait in enumerate(trait_nodes):
            t_path = f"{path}.traits[{t_index}]"
            t_fields = self.fields(
                trait, t_path, required=("type", "properties"), what=" describing a trait"
            )
            t_type = self.text(t_fields["type"], f"{t_path}.type", what="a trait type")
            p_path = f"{t_path}.properties"
            if t_type in ("spreadscaler", "daemonscaler"):
                if scaler is not None:
                    self.fail(
                        t_fields["type"],
                        f"{t_path}.type",
                        f"component {name!r} already has a {scaler.kind}; "
                        "give each component at most one scaler",
                    )
                scaler = self.scaler(ScalerKind(t_type), t_fields["properties"], p_path)
                if ctype is ComponentType.CAPABILITY:
                    self.warnings.append(
                        f"{self.source}:{t_fields['type'].line}: {t_path}: built-in providers "
                        f"run in every host; the {t_type} on capability {name!r} has no effect"
                    )
            elif t_type == "linkdef":
                if ctype is ComponentType.CAPABILITY:
                    self.fail(
                        t_fields["type"],
                        f"{t_path}.type",
                        "a linkdef belongs on the actor that uses the provider; move it "
                        f"to the actor and set its target to {name!r}",
                    )
                link = self.linkdef(t_fields["properties"], p_path, name, others)
                for other in linkdefs:
                    if (other.contract_id, other.link_name) == (link.contract_id, link.link_name):
                        self.fail(
                            t_fields["properties"],
                            p_path,
                            f"component {name!r} already has a linkdef for "
                            f"{link.contract_id} with link name {link.link_name!r}",
                        )
                linkdefs.append(link)
            elif t_type == "link":
                self.fail(
                    t_fields["type"],
                    f"{t_path}.type",
                    "the wadm 0.10+ 'link' trait (WIT interfaces) is not supported; use "
                    "'type: linkdef' with 'target' and 'values' on the actor",
                )
            else:
                self.fail(
                    t_fields["type"],
                    f"{t_path}.type",
                    f"unknown trait type {t_type!r}"
                    f"{suggest(t_type, ['spreadscaler', 'daemonscaler', 'linkdef'])} "
                    "(meshhost knows spreadscaler, daemonscaler and linkdef)",
                )
        if ctype is ComponentType.ACTOR and scaler is None:
            self.warnings.append(
                f"{self.source}: {path}: actor {name!r} has no spreadscaler or daemonscaler, "
                "so no instance of it will run"
            )
        return Component(
            name=name,
            type=ctype,
            image=image,
            sha256=sha256,
            actor_id=actor_id,
            contract_id=contract_id,
            link_name=link_name,
            scaler=scaler,
            linkdefs=tuple(linkdefs),
            limits=limits,
        )

    # -- actor images

    def actor_image(self, props: dict[str, Node], path: str) -> tuple[str, str | None, str | None]:
        node = props["image"]
        ref = self.text(node, f"{path}.image", what="an image path (text)").strip()
        if not ref:
            self.fail(node, f"{path}.image", "the image is empty; give the path of a .wasm file")
        image_field = f"{path}.image"

        def fail(problem: str) -> NoReturn:
            self.fail(node, image_field, problem)

        file_path = image_path(ref, self.base_dir, fail)
        sha256 = actor_id = None
        if "sha256" in props:
            sha256 = self.text(
                props["sha256"], f"{path}.sha256", scalar_ok=True, what="a hex digest"
            ).lower()
            if not _SHA256_RE.match(sha256):
                self.fail(
                    props["sha256"],
                    f"{path}.sha256",
                    "must be 64 hexadecimal characters (the SHA-256 of the .wasm file)",
                )
        if "id" in props:
            actor_id = self.text(props["id"], f"{path}.id", what="an actor id")
            if not _ACTOR_ID_RE.match(actor_id):
                self.fail(
                    props["id"],
                    f"{path}.id",
                    "must be an actor public key: 56 characters starting with 'M'",
                )
        if self.check_images:
            module = read_image(file_path, fail)
            digest = hashlib.sha256(module).hexdigest()
            if sha256 is not None and sha256 != digest:
                self.fail(
                    props["sha256"],
                    f"{path}.sha256",
                    f"does not match the file {str(file_path)!r} (its SHA-256 is "
                    f"{digest}); the file changed, or the digest is wrong",
                )
            sha256 = digest
            if self.inspect_image is not None:
                try:
                    found = self.inspect_image(module)
                except MeshError as exc:
                    self.fail(node, f"{path}.image", f"cannot use {str(file_path)!r}: {exc}")
                if found and actor_id and found != actor_id:
                    self.fail(
                        props["id"],
                        f"{path}.id",
                        f"the module is signed as {found}, not {actor_id}",
                    )
                actor_id = found or actor_id
        return file_path.as_uri(), sha256, actor_id

    def capability(
        self, props: dict[str, Node], path: str, fields: dict[str, Node]
    ) -> tuple[str, str, str]:
        image = ""
        if "image" in props:
            image = self.text(props["image"], f"{path}.image", what="an image reference")
        if "contract" in props:
            node = props["contract"]
            contract = self.text(node, f"{path}.contract", what="a contract id")
            if contract not in BUILTIN_CONTRACTS:
                self.fail(
                    node,
                    f"{path}.contract",
                    f"meshhost has no built-in provider for {contract!r}"
                    f"{suggest(contract, list(BUILTIN_CONTRACTS))} (built-in: "
                    f"{', '.join(BUILTIN_CONTRACTS)})",
                )
        else:
            basename = image.rsplit("/", 1)[-1].split(":", 1)[0].split("@", 1)[0]
            if basename not in _IMAGE_CONTRACTS:
                where = props.get("image", fields["properties"])
                self.fail(
                    where,
                    f"{path}.contract",
                    "cannot tell which built-in provider this capability is; add "
                    f"'contract:' (one of {', '.join(BUILTIN_CONTRACTS)})",
                )
            contract = _IMAGE_CONTRACTS[basename]
        link_name = DEFAULT_LINK_NAME
        if "link_name" in props:
            link_name = self.text(props["link_name"], f"{path}.link_name", what="a link name")
            if not link_name or not _NAME_RE.match(link_name):
                self.fail(
                    props["link_name"],
                    f"{path}.link_name",
                    "a link name may contain only letters, digits, '-' and '_'",
                )
        if "id" in props:
            self.text(props["id"], f"{path}.id", what="a provider id")  # accepted, unused
        return image, contract, link_name

    # -- traits

    def scaler(self, kind: ScalerKind, node: Node, path: str) -> Scaler:
        props = self.fields(node, path, optional=("instances", "replicas", "spread"))
        if "instances" in props and "replicas" in props:
            self.fail(
                props["replicas"],
                f"{path}.replicas",
                "give either 'instances' or 'replicas' (the wadm 0.x name), not both",
            )
        if "instances" not in props and "replicas" not in props:
            self.fail(
                node, f"{path}.instances", "required field 'instances' (or 'replicas') is missing"
            )
        key = "instances" if "instances" in props else "replicas"
        high = MAX_INSTANCES if kind is ScalerKind.SPREAD else MAX_INSTANCES_PER_HOST
        what = "instances" if kind is ScalerKind.SPREAD else "instances per host"
        instances = self.integer(props[key], f"{path}.{key}", 0, high, what)
        spreads: list[Spread] = []
        spread_nodes: tuple[Node, ...] = ()
        if "spread" in props:
            spread_nodes = self.sequence(props["spread"], f"{path}.spread", "spread", MAX_SPREADS)
        names: dict[str, int] = {}
        for index, item in enumerate(spread_nodes):
            s_path = f"{path}.spread[{index}]"
            s_fields = self.fields(
                item,
                s_path,
                required=("name",),
                optional=("requirements", "weight"),
                what=" describing a spread entry",
            )
            s_name = self.text(
                s_fields["name"], f"{s_path}.name", what="a spread name", limit=MAX_NAME_CHARS
            )
            if not s_name:
                self.fail(s_fields["name"], f"{s_path}.name", "the spread name is empty")
            if s_name in names:
                self.fail(
                    s_fields["name"],
                    f"{s_path}.name",
                    f"duplicate spread name {s_name!r} (first on line {names[s_name]})",
                )
            names[s_name] = s_fields["name"].line
            requirements: Pairs = ()
            if "requirements" in s_fields:
                requirements = self.string_map(
                    s_fields["requirements"],
                    f"{s_path}.requirements",
                    "requirements",
                    value_limit=MAX_LABEL_CHARS,
                )
            weight = DEFAULT_SPREAD_WEIGHT
            if "weight" in s_fields:
                weight = self.integer(
                    s_fields["weight"], f"{s_path}.weight", 0, MAX_WEIGHT, "weight"
                )
                if kind is ScalerKind.DAEMON:
                    self.warnings.append(
                        f"{self.source}:{s_fields['weight'].line}: {s_path}.weight: weights "
                        "have no effect in a daemonscaler (every matching host runs the "
                        "instances)"
                    )
            spreads.append(Spread(s_name, requirements, weight))
        if not spreads:
            spreads.append(Spread("default", (), DEFAULT_SPREAD_WEIGHT))
        elif kind is ScalerKind.SPREAD:
            total = sum(s.weight for s in spreads)
            if total == 0:
                self.fail(
                    props["spread"],
                    f"{path}.spread",
                    "the spread weights add up to 0, so no entry can get an instance; "
                    "give at least one a positive weight",
                )
            if len(spreads) > 1:
                counts = split_by_weight(instances, [s.weight for s in spreads])
                for spread, count, node_ in zip(spreads, counts, spread_nodes, strict=True):
                    if count == 0 and spread.weight > 0 and instances > 0:
                        self.warnings.append(
                            f"{self.source}:{node_.line}: spread {spread.name!r} gets no "
                            f"instance of {instances} at weight {spread.weight}/{total}"
                        )
        return Scaler(kind, instances, tuple(spreads))

    def linkdef(
        self, node: Node, path: str, source: str, components: dict[str, ComponentType]
    ) -> Linkdef:
        props = self.fields(node, path, required=("target",), optional=("values",))
        target_node = props["target"]
        target = self.text(target_node, f"{path}.target", what="a component name or contract id")
        if target == source:
            self.fail(
                target_node,
                f"{path}.target",
                f"target {target!r} is the actor itself; an actor needs no link to itself",
            )
        if target in components:
            if components[target] is ComponentType.ACTOR:
                # Actor-to-actor call link: the contract id is the target's key.
                # Unknown until its image is inspected; the placeholder is replaced
                # by Manifest resolution below.
                contract, link_name = f"{_ACTOR_TARGET}{target}", DEFAULT_LINK_NAME
            else:
                _, contract, link_name = self.capabilities[target]
        elif _CONTRACT_RE.match(target):
            if target not in BUILTIN_CONTRACTS:
                self.fail(
                    target_node,
                    f"{path}.target",
                    f"meshhost has no built-in provider for {target!r}"
                    f"{suggest(target, list(BUILTIN_CONTRACTS))}",
                )
            contract, link_name = target, DEFAULT_LINK_NAME
        else:
            names = sorted(components)
            self.fail(
                target_node,
                f"{path}.target",
                f"target {target!r} is not a component of this manifest"
                f"{suggest(target, names)} (components: {', '.join(names)}) "
                "nor a contract id such as wasmcloud:keyvalue",
            )
        values: Pairs = ()
        if "values" in props:
            values = self.string_map(props["values"], f"{path}.values", "linkdef values")
        return Linkdef(target, contract, link_name, values)
