"""Nested applications, flattened into the template that nests them.

Over 500 lines: each way to nest an application (a path, a URL, the Serverless Application
Repository, an imported stack) goes through the same flattening.

CloudFormation deploys an ``AWS::Serverless::Application`` or an ``AWS::CloudFormation::Stack``
as a stack of its own; the local stack runs one document. So a nested template it can read from
disk joins its parent's at load time, as if it had been written there:

- its resources, conditions and mappings take the application's logical id as a prefix
  (``Stepwell`` + ``RunnerFunction`` -> ``StepwellRunnerFunction``), and every reference inside
  it (``Ref``, ``Fn::GetAtt``, ``Fn::Sub``, ``Fn::If``, ``Condition``, ``DependsOn``,
  ``Fn::FindInMap``) follows the rename; its files are found from its own folder;
- a reference to one of its parameters becomes the value the application gives it (an
  expression of the parent) or the parameter's default; ``AWS::StackName`` becomes the nested
  stack's name, ``<parent's stack>-<application>``; other pseudo parameters stay;
- its ``Globals`` are merged into its own functions here, so the parent's apply to the
  parent's functions alone (:attr:`Flattened.nested` names the resources already merged);
- the parent's ``!GetAtt App.Outputs.Name`` (and ``${App.Outputs.Name}`` in ``!Sub``) become
  that output's value, and an ``Fn::ImportValue`` of an output's ``Export`` its value.

The application resource itself is gone from the result. A template nested in a nested template
is flattened into its own parent first. Pure: no AWS calls, no files but the templates.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from stepwell.definition.errors import SourceMap
from stepwell.local.errors import TemplateError
from stepwell.store.tables import load_template

APPLICATION_TYPES = ("AWS::Serverless::Application", "AWS::CloudFormation::Stack")
"""Resources that are a stack of their own: each is replaced by its template's resources."""

_LOCATION = {
    "AWS::Serverless::Application": "Location",
    "AWS::CloudFormation::Stack": "TemplateURL",
}
_FILE_PROPERTIES = ("CodeUri", "ContentUri", "DefinitionUri", "Code", "Content")
"""Properties that name a file or folder of the project, from their template's folder."""
_IMPLICIT_HTTP_API = "ServerlessHttpApi"
_SUB = re.compile(r"\$\{([^}]*)\}")

Remote = Callable[[str, Mapping[str, Any]], Path | None]
"""Finds the template of an application the loader cannot read from disk (a URL, a Serverless
Application Repository application): ``(logical id, resource) -> a template file, or None``
(a relative path is taken from the nesting template's folder, as a ``Location`` is)."""


@dataclass(frozen=True)
class Flattened:
    """A template with every nested application it can read flattened into it."""

    document: dict[str, Any]
    nested: frozenset[str]
    """Logical ids of the resources that came from nested templates: their own template's
    ``Globals`` are merged into them already, the top template's do not apply."""


def read(path: Path) -> dict[str, Any]:
    """One template file, YAML (CloudFormation short tags allowed) or JSON."""
    try:
        return load_template(path)
    except OSError as exc:
        raise TemplateError(f"{path}: {exc.strerror or exc}") from None
    except (ValueError, YAMLError) as exc:
        raise TemplateError(str(exc)) from None  # ruamel's message says where: file, line


def load(
    path: Path,
    *,
    stack: str,
    pseudo: Mapping[str, Any],
    parameters: Mapping[str, str] | None = None,
    remote: Remote | None = None,
    exports: Mapping[str, Any] | None = None,
    document: dict[str, Any] | None = None,
) -> Flattened:
    """The template at ``path`` (or ``document``, read from it already), flattened; ``stack``
    is its stack's name.

    Export names, and the names ``Fn::ImportValue`` asks for, are read with ``pseudo`` (the
    pseudo parameters' values) and the template's ``parameters`` (their defaults otherwise).
    ``exports`` are more exports to import (name -> an expression of the template).
    """
    if document is None:
        document = read(path)
    level = _flatten(document, path, stack, remote, (path.resolve(),))
    refs = _refs(document, parameters or {}, {**pseudo, "AWS::StackName": stack})
    known = _exports(level.exports, refs, exports or {})
    if not known:
        return Flattened(level.document, frozenset(level.nested))
    imports = _Imports(known, refs)
    flat = dict(level.document)
    for key in ("Globals", "Resources", "Outputs"):
        if key in flat:
            flat[key] = imports.node(flat[key])
    return Flattened(flat, frozenset(level.nested))


def _refs(
    document: Mapping[str, Any], given: Mapping[str, str], pseudo: Mapping[str, Any]
) -> dict[str, str]:
    """What ``Ref`` gives for the pseudo parameters and parameters that are text."""
    refs = {name: value for name, value in pseudo.items() if isinstance(value, str)}
    for name, spec in (document.get("Parameters") or {}).items():
        if name in given:
            refs[name] = given[name]
        elif isinstance(spec, dict) and "Default" in spec:
            refs[name] = _literal(spec["Default"])
    return refs


def _exports(
    found: Sequence[_Export], refs: Mapping[str, str], given: Mapping[str, Any]
) -> dict[str, _Export]:
    """Export name -> export, for the nested templates' exports and the caller's."""
    known: dict[str, _Export] = {}
    for export in found:
        name = _text_of(export.name, refs)
        if name is None:
            raise TemplateError(
                f"{export.where}: Export.Name {export.name!r}: the local stack reads export "
                "names made of text, parameters and pseudo parameters"
            )
        if name in known:
            raise TemplateError(
                f"export {name} is declared twice: {known[name].where}, {export.where}"
            )
        known[name] = _Export(name, export.value, export.where)
    for name, value in given.items():
        if name in known:
            raise TemplateError(f"export {name} is given to the loader and by {known[name].where}")
        known[name] = _Export(name, value, "the loader's exports")
    return known


# -- one template and its applications ---------------------------------------------------------


@dataclass(frozen=True)
class _Export:
    name: Any
    """An expression while the export travels up; its text once read at the top."""
    value: Any
    where: _Where | str


@dataclass
class _Level:
    """One template flattened: its document, the resources from nested templates, and the
    exports those declare (expressions of this template)."""

    document: dict[str, Any]
    nested: set[str] = field(default_factory=set)
    exports: list[_Export] = field(default_factory=list)


@dataclass(frozen=True)
class _Application:
    logical_id: str
    resource: Mapping[str, Any]
    path: Path
    level: _Level


@dataclass(frozen=True)
class _Renamed:
    """An application's template as its parent sees it."""

    resources: dict[str, dict[str, Any]]
    conditions: dict[str, Any]
    mappings: dict[str, Any]
    outputs: dict[str, Any]
    exports: list[_Export]


def _flatten(
    document: dict[str, Any],
    path: Path,
    stack: str,
    remote: Remote | None,
    chain: tuple[Path, ...],
) -> _Level:
    """One template flattened (``chain``: the files nesting it, to find one nesting itself)."""
    resources = document.get("Resources")
    if not isinstance(resources, dict) or not any(
        isinstance(r, dict) and r.get("Type") in APPLICATION_TYPES for r in resources.values()
    ):
        return _Level(document)
    return _Parent(document, path, stack, remote, chain).flatten()


class _Parent:
    """A template with applications, each flattened into it."""

    def __init__(
        self,
        document: dict[str, Any],
        path: Path,
        stack: str,
        remote: Remote | None,
        chain: tuple[Path, ...],
    ) -> None:
        self.document = document
        self.path = path
        self.stack = stack
        self.remote = remote
        self.chain = chain
        self.resources: dict[str, Any] = document["Resources"]
        self.apps = {
            logical_id: self._application(logical_id, resource)
            for logical_id, resource in self.resources.items()
            if isinstance(resource, dict) and resource.get("Type") in APPLICATION_TYPES
        }
        self._renamed: dict[str, _Renamed] = {}
        self._renaming: list[str] = []

    def flatten(self) -> _Level:
        """The document with each application replaced by its template's resources."""
        resources: dict[str, Any] = {}
        sections: dict[str, dict[str, Any]] = {
            "Conditions": dict(self.document.get("Conditions") or {}),
            "Mappings": dict(self.document.get("Mappings") or {}),
        }
        nested: set[str] = set()
        exports: list[_Export] = []
        for logical_id, resource in self.resources.items():
            if logical_id not in self.apps:
                resources[logical_id] = self._outputs_in(resource, "Resources", logical_id)
                continue
            renamed = self.renamed(logical_id)
            for section, names in (
                ("Resources", renamed.resources),
                ("Conditions", renamed.conditions),
                ("Mappings", renamed.mappings),
            ):
                into = resources if section == "Resources" else sections[section]
                for name, value in names.items():
                    if name in into or (section == "Resources" and name in self.resources):
                        raise TemplateError(
                            f"{self.where(f'application {logical_id}', 'Resources', logical_id)}: "
                            f"its {section[:-1].lower()} {name.removeprefix(logical_id)} "
                            f"becomes {name}, which this template has already: rename one"
                        )
                    into[name] = value
            nested.update(renamed.resources)
            exports.extend(renamed.exports)
        for resource in resources.values():
            self._expand_depends_on(resource)
        document = {**self.document, "Resources": resources}
        document.update({key: value for key, value in sections.items() if value})
        for section in ("Globals", "Outputs"):  # Globals are functions' properties too
            if section in self.document:
                document[section] = {
                    name: self._outputs_in(value, section, name)
                    for name, value in (self.document[section] or {}).items()
                }
        return _Level(document, nested, exports)

    # -- loading ------------------------------------------------------------------------------

    def _application(self, logical_id: str, resource: Mapping[str, Any]) -> _Application:
        key = _LOCATION[str(resource["Type"])]
        location = (resource.get("Properties") or {}).get(key)
        at = self.where(f"application {logical_id}", "Resources", logical_id, "Properties", key)
        if location is None:
            raise TemplateError(f"{at}: {key} is missing: set it to the nested template's path")
        if isinstance(location, str) and "://" not in location:
            path = self.path.parent / location
        else:
            found = self.remote(logical_id, resource) if self.remote is not None else None
            if found is None:
                raise TemplateError(
                    f"{at}: {key} {location!r} is not a file; the local stack runs only nested "
                    f"templates it can read from disk: set {key} to the template's path"
                )
            path = self.path.parent / found
        if not path.is_file():
            raise TemplateError(f"{at}: {key} {location}: no template file at {path}")
        if path.resolve() in self.chain:
            raise TemplateError(f"{at}: {path} nests itself")
        document = read(path)
        if not isinstance(document.get("Resources"), dict) or not document["Resources"]:
            raise TemplateError(f"{path}: the template has no Resources")
        nested_stack = f"{self.stack}-{logical_id}"
        level = _flatten(document, path, nested_stack, self.remote, (*self.chain, path.resolve()))
        return _Application(logical_id, resource, path, level)

    # -- an application's template, renamed ---------------------------------------------------

    def renamed(self, logical_id: str) -> _Renamed:
        """The application's template in this template's names (once; its parameters may name
        another application's outputs, which renames that one first)."""
        if logical_id in self._renamed:
            return self._renamed[logical_id]
        if logical_id in self._renaming:
            cycle = " -> ".join([*self._renaming[self._renaming.index(logical_id) :], logical_id])
            at = self.where(f"application {logical_id}", "Resources", logical_id)
            raise TemplateError(
                f"{at}: its parameters need its own outputs ({cycle}): CloudFormation refuses "
                "a circular dependency"
            )
        self._renaming.append(logical_id)
        app = self.apps[logical_id]
        renamed = _rename(app, self._parameters(app), f"{self.stack}-{logical_id}")
        self._renaming.pop()
        self._renamed[logical_id] = renamed
        return renamed

    def _parameters(self, app: _Application) -> dict[str, Any]:
        """What each of the nested template's parameters stands for in this template."""
        keys = ("Resources", app.logical_id, "Properties", "Parameters")
        at = self.where(f"application {app.logical_id}", *keys)
        given = (app.resource.get("Properties") or {}).get("Parameters") or {}
        if not isinstance(given, dict):
            raise TemplateError(f"{at}: Parameters must be a mapping of name to value")
        declared = app.level.document.get("Parameters") or {}
        unknown = sorted(set(given) - set(declared))
        if unknown:
            raise TemplateError(
                f"{at}: {app.path} has no parameter {', '.join(unknown)} "
                f"(its parameters: {', '.join(declared) or 'none'})"
            )
        values: dict[str, Any] = {}
        for name, declaration in declared.items():
            spec = declaration if isinstance(declaration, dict) else {}
            if name in given:
                value = self._outputs_in(given[name], *keys, name)
            elif "Default" in spec:
                value = spec["Default"]
            else:
                raise TemplateError(
                    f"{at}: parameter {name} of {app.path} has no Default and the application "
                    f"gives it no value: add {name} to {app.logical_id}'s Parameters"
                )
            where = self.where(f"application {app.logical_id}: parameter {name}", *keys, name)
            values[name] = _parameter(value, spec, where)
        return values

    # -- the applications' outputs ------------------------------------------------------------

    def output(self, app: str, name: str, keys: Sequence[str]) -> Any:
        """An application's output, as an expression of this template."""
        outputs = self.renamed(app).outputs
        if name not in outputs:
            raise TemplateError(
                f"{self.where(_label(keys), *keys)}: {app}.Outputs.{name}: "
                f"{self.apps[app].path} has no output {name} "
                f"(its outputs: {', '.join(outputs) or 'none'})"
            )
        return copy.deepcopy(outputs[name])

    def stack_id(self, app: str) -> Any:
        """What ``!Ref App`` gives: the nested stack's id, an ARN as ``AWS::StackId`` is."""
        return {
            "Fn::Sub": "arn:${AWS::Partition}:cloudformation:${AWS::Region}:${AWS::AccountId}"
            f":stack/{self.stack}-{app}/00000000-0000-0000-0000-000000000000"
        }

    def _outputs_in(self, node: Any, *keys: str) -> Any:
        return _Outputs(self, keys).node(node)

    def _expand_depends_on(self, resource: dict[str, Any]) -> None:
        """``DependsOn: App`` waits for every resource of the application's template."""
        after = _names(resource.get("DependsOn"))
        if not any(name in self.apps for name in after):
            return
        expanded = [
            expanded
            for name in after
            for expanded in (self.renamed(name).resources if name in self.apps else [name])
        ]
        if expanded:
            resource["DependsOn"] = expanded
        else:
            del resource["DependsOn"]

    def where(self, what: str, *keys: str) -> _Where:
        """A place in this template, for an error."""
        return _Where(self.path, keys, what)


def _rename(app: _Application, values: Mapping[str, Any], stack: str) -> _Renamed:
    """The application's template with its names prefixed and its parameters given."""
    document = app.level.document
    scope = _Scope(app.logical_id, stack, values)
    condition = app.resource.get("Condition")
    depends_on = _names(app.resource.get("DependsOn"))
    function_globals = (document.get("Globals") or {}).get("Function") or {}
    own = {
        logical_id: resource
        for logical_id, resource in document["Resources"].items()
        if isinstance(resource, dict)
    }
    for logical_id, resource in list(own.items()):
        if logical_id not in app.level.nested:
            own[logical_id] = _own_resource(resource, function_globals, app.path.parent)
    if _IMPLICIT_HTTP_API not in own and any(
        _uses_implicit_api(resource) for resource in own.values()
    ):
        own[_IMPLICIT_HTTP_API] = {"Type": "AWS::Serverless::HttpApi"}
    resources = {
        scope.name(logical_id): scope.resource(resource, condition, depends_on)
        for logical_id, resource in own.items()
    }
    conditions = {}
    for name, body in (document.get("Conditions") or {}).items():
        renamed = scope.node(body)
        if condition is not None:  # nothing of the application exists when its condition fails
            renamed = {"Fn::And": [{"Condition": condition}, renamed]}
        conditions[scope.name(name)] = renamed
    mappings = {
        scope.name(name): copy.deepcopy(value)
        for name, value in (document.get("Mappings") or {}).items()
    }
    outputs: dict[str, Any] = {}
    exports = [_Export(scope.node(e.name), scope.node(e.value), e.where) for e in app.level.exports]
    for name, output in (document.get("Outputs") or {}).items():
        if not isinstance(output, dict):
            continue
        outputs[name] = scope.node(output.get("Value"))
        export = output.get("Export")
        if isinstance(export, dict) and "Name" in export:
            where = _Where(app.path, ("Outputs", name), f"output {name}")
            exports.append(_Export(scope.node(export["Name"]), outputs[name], where))
    return _Renamed(resources, conditions, mappings, outputs, exports)


def _own_resource(
    resource: dict[str, Any], function_globals: Mapping[str, Any], folder: Path
) -> dict[str, Any]:
    """A resource of the nested template itself: its Globals merged, its files found."""
    if "Properties" not in resource and resource.get("Type") != "AWS::Serverless::Function":
        return resource
    props = dict(resource.get("Properties") or {})
    if resource.get("Type") == "AWS::Serverless::Function":
        props = _with_api(merge_globals(function_globals, props))
    for key in _FILE_PROPERTIES:
        value = props.get(key)
        if isinstance(value, str) and "://" not in value:
            props[key] = str((folder / value).resolve())
    return {**resource, "Properties": props}


def _with_api(props: dict[str, Any]) -> dict[str, Any]:
    """SAM serves an HttpApi event that names no API on the stack's own implicit API: in a
    nested template that is the nested stack's, so the event names it."""
    events = props.get("Events")
    if not isinstance(events, dict):
        return props
    return {**props, "Events": {name: _on_api(event) for name, event in events.items()}}


def _on_api(event: Any) -> Any:
    if not isinstance(event, dict) or event.get("Type") != "HttpApi":
        return event
    props = event.get("Properties") or {}
    if props.get("ApiId"):
        return event
    return {**event, "Properties": {**props, "ApiId": {"Ref": _IMPLICIT_HTTP_API}}}


def _uses_implicit_api(resource: Mapping[str, Any]) -> bool:
    events = (resource.get("Properties") or {}).get("Events")
    return isinstance(events, dict) and any(
        (e.get("Properties") or {}).get("ApiId") == {"Ref": _IMPLICIT_HTTP_API}
        for e in events.values()
        if isinstance(e, dict) and e.get("Type") == "HttpApi"
    )


def _parameter(value: Any, spec: Mapping[str, Any], where: _Where) -> Any:
    """A parameter's value as a ``Ref`` to it reads (a list for list types)."""
    listed = str(spec.get("Type", "String")).startswith("List<") or (
        spec.get("Type") == "CommaDelimitedList"
    )
    if isinstance(value, dict | list):
        return {"Fn::Split": [",", value]} if listed else value
    text = _literal(value)
    allowed = spec.get("AllowedValues")
    if isinstance(allowed, list) and text not in [str(a) for a in allowed]:
        raise TemplateError(f"{where}: {text!r} is not one of {', '.join(map(str, allowed))}")
    return [item.strip() for item in text.split(",")] if listed else text


def _names(depends_on: Any) -> list[str]:
    if depends_on is None:
        return []
    return [str(d) for d in depends_on] if isinstance(depends_on, list) else [str(depends_on)]


# -- rewriting expressions ---------------------------------------------------------------------


class _Rewrite:
    """A walk over a template's expressions that replaces some intrinsic functions."""

    def __init__(self) -> None:
        self.intrinsics: dict[str, Callable[[Any], Any]] = {}

    def node(self, node: Any) -> Any:
        if isinstance(node, list):
            return [self.node(item) for item in node]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, arg),) = node.items()
            rewrite = self.intrinsics.get(key)
            if rewrite is not None:
                return rewrite(arg)
        return {key: self.node(value) for key, value in node.items()}

    def sub(self, arg: Any) -> tuple[str, dict[str, Any]] | None:
        """``!Sub``'s text and variables (each rewritten); None when it is not a ``!Sub``."""
        parts = _sub_parts(arg)
        if parts is None:
            return None
        text, variables = parts
        return text, {name: self.node(value) for name, value in variables.items()}


def _sub_parts(arg: Any) -> tuple[str, dict[str, Any]] | None:
    """``!Sub``'s text and variables, of either form; None when it is neither."""
    if isinstance(arg, str):
        return arg, {}
    if not isinstance(arg, list) or len(arg) != 2:
        return None
    text, variables = arg
    if not isinstance(text, str) or not isinstance(variables, dict):
        return None
    return text, {str(name): value for name, value in variables.items()}


class _Scope(_Rewrite):
    """A nested template's expressions, as the template that nests it sees them."""

    def __init__(self, prefix: str, stack: str, values: Mapping[str, Any]) -> None:
        super().__init__()
        self.prefix = prefix
        self.stack = stack
        """The nested stack's name, ``AWS::StackName`` in it."""
        self.values = values
        """Each parameter's value, an expression of the parent."""
        self.intrinsics = {
            "Ref": self._ref,
            "Fn::GetAtt": self._get_att,
            "Fn::Sub": self._sub,
            "Fn::If": lambda a: self._named_first("Fn::If", a),
            "Fn::FindInMap": lambda a: self._named_first("Fn::FindInMap", a),
            "Condition": lambda a: {"Condition": self.name(a) if isinstance(a, str) else a},
            "Fn::Condition": lambda a: {"Fn::Condition": self.name(a) if isinstance(a, str) else a},
        }

    def name(self, logical_id: str) -> str:
        """A resource's, condition's or mapping's name in the parent."""
        return self.prefix + logical_id

    def resource(
        self, resource: Mapping[str, Any], condition: Any, depends_on: list[str]
    ) -> dict[str, Any]:
        """A resource in the parent: it exists when the application does, after what the
        application waits for."""
        renamed = {
            key: self.node(value)
            for key, value in resource.items()
            if key not in ("Condition", "DependsOn")
        }
        own = resource.get("Condition")
        if own is not None:
            renamed["Condition"] = self.name(str(own))
        elif condition is not None:
            renamed["Condition"] = condition
        after = resource.get("DependsOn")
        if isinstance(after, str) and not depends_on:
            renamed["DependsOn"] = self.name(after)
        elif after is not None or depends_on:
            renamed["DependsOn"] = [self.name(name) for name in _names(after)] + depends_on
        return renamed

    def _ref(self, arg: Any) -> Any:
        if not isinstance(arg, str):
            return {"Ref": self.node(arg)}
        if arg == "AWS::StackName":
            return self.stack
        if arg.startswith("AWS::"):
            return {"Ref": arg}
        if arg in self.values:
            return copy.deepcopy(self.values[arg])
        return {"Ref": self.name(arg)}

    def _get_att(self, arg: Any) -> Any:
        if isinstance(arg, str):
            logical_id, dot, attribute = arg.partition(".")
            return {"Fn::GetAtt": self.name(logical_id) + dot + attribute}
        if isinstance(arg, list) and arg and isinstance(arg[0], str):
            return {"Fn::GetAtt": [self.name(arg[0]), *self.node(arg[1:])]}
        return {"Fn::GetAtt": self.node(arg)}

    def _named_first(self, key: str, arg: Any) -> Any:
        """``Fn::If``'s condition, ``Fn::FindInMap``'s mapping."""
        if isinstance(arg, list) and arg and isinstance(arg[0], str):
            return {key: [self.name(arg[0]), *self.node(arg[1:])]}
        return {key: self.node(arg)}

    def _sub(self, arg: Any) -> Any:
        parts = self.sub(arg)
        if parts is None:
            return {"Fn::Sub": self.node(arg)}
        text, variables = parts
        own = set(variables)

        def replace(match: re.Match[str]) -> str:
            name = match.group(1).strip()
            if name.startswith("!") or name in own:
                return match.group(0)
            if name == "AWS::StackName":
                return self.stack
            if name.startswith("AWS::"):
                return match.group(0)
            if name in self.values:  # a variable of that name stands for the parameter
                variables[name] = copy.deepcopy(self.values[name])
                return match.group(0)
            return "${" + self.name(name) + "}"

        text = _SUB.sub(replace, text)
        return {"Fn::Sub": [text, variables] if variables else text}


class _Outputs(_Rewrite):
    """A template's references to its applications' outputs, replaced by the outputs' values
    (and to an application itself, by its stack's id)."""

    def __init__(self, parent: _Parent, keys: Sequence[str]) -> None:
        super().__init__()
        self.parent = parent
        self.keys = keys
        self.intrinsics = {"Ref": self._ref, "Fn::GetAtt": self._get_att, "Fn::Sub": self._sub}

    def _ref(self, arg: Any) -> Any:
        if isinstance(arg, str) and arg in self.parent.apps:
            return self.parent.stack_id(arg)
        return {"Ref": self.node(arg)}

    def _output(self, name: str) -> tuple[str, str] | None:
        """``(application, output)`` for ``App.Outputs.Name``."""
        app, _, rest = name.partition(".")
        if app in self.parent.apps and rest.startswith("Outputs."):
            return app, rest.removeprefix("Outputs.")
        return None

    def _get_att(self, arg: Any) -> Any:
        if isinstance(arg, str):
            found = self._output(arg)
        elif isinstance(arg, list) and len(arg) == 2 and all(isinstance(a, str) for a in arg):
            found = self._output(f"{arg[0]}.{arg[1]}")
        else:
            found = None
        if found is None:
            return {"Fn::GetAtt": self.node(arg)}
        return self.parent.output(*found, self.keys)

    def _sub(self, arg: Any) -> Any:
        parts = self.sub(arg)
        if parts is None:
            return {"Fn::Sub": self.node(arg)}
        text, variables = parts
        for match in _SUB.finditer(text):
            name = match.group(1).strip()
            found = None if name in variables else self._output(name)
            if found is not None:  # a variable named App.Outputs.Name: the text stays as it is
                variables[name] = self.parent.output(*found, self.keys)
            elif name in self.parent.apps and name not in variables:
                variables[name] = self.parent.stack_id(name)
        return {"Fn::Sub": [text, variables] if variables else text}


class _Imports(_Rewrite):
    """``Fn::ImportValue`` of a known export, replaced by the exported value."""

    def __init__(self, exports: Mapping[str, _Export], refs: Mapping[str, str]) -> None:
        super().__init__()
        self.exports = exports
        self.refs = refs
        self._importing: list[str] = []
        self.intrinsics = {"Fn::ImportValue": self._import}

    def _import(self, arg: Any) -> Any:
        name = _text_of(arg, self.refs)
        if name is None or name not in self.exports:
            # Left as it is: the resolver says it cannot import from another stack.
            return {"Fn::ImportValue": self.node(arg)}
        if name in self._importing:
            raise TemplateError(f"export {name} imports itself ({self.exports[name].where})")
        self._importing.append(name)
        value = self.node(copy.deepcopy(self.exports[name].value))
        self._importing.pop()
        return value


def _text_of(node: Any, refs: Mapping[str, str]) -> str | None:
    """An expression's text when it needs no resource: text, numbers, ``Ref`` of ``refs``, and
    ``!Sub`` and ``!Join`` of those (None otherwise)."""
    if isinstance(node, str | int | float):
        return _literal(node)
    if not isinstance(node, dict) or len(node) != 1:
        return None
    ((key, arg),) = node.items()
    if key == "Ref" and isinstance(arg, str):
        return refs.get(arg)
    if key == "Fn::Join" and isinstance(arg, list) and len(arg) == 2:
        items = [_text_of(item, refs) for item in arg[1] or []]
        if not isinstance(arg[0], str) or None in items:
            return None
        return arg[0].join(item for item in items if item is not None)
    parts = _sub_parts(arg) if key == "Fn::Sub" else None
    if parts is None:
        return None
    text, variables = parts
    out, start = [], 0
    for match in _SUB.finditer(text):
        name = match.group(1).strip()
        if name.startswith("!"):
            value: str | None = "${" + name[1:] + "}"
        else:
            value = _text_of(variables.get(name, {"Ref": name}), refs)
        if value is None:
            return None
        out += [text[start : match.start()], value]
        start = match.end()
    return "".join([*out, text[start:]])


def _literal(value: str | int | float) -> str:
    """A scalar as CloudFormation reads it as text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# -- SAM's Globals -----------------------------------------------------------------------------


def merge_globals(globals_: Mapping[str, Any], props: Mapping[str, Any]) -> dict[str, Any]:
    """SAM's rule: maps merge (the function wins), lists are appended to the globals' list,
    anything else the function sets replaces the global."""
    merged: dict[str, Any] = copy.deepcopy(dict(globals_))
    for key, value in props.items():
        current = merged.get(key)
        if isinstance(current, dict) and isinstance(value, dict) and not _intrinsic(value):
            merged[key] = merge_globals(current, value)
        elif isinstance(current, list) and isinstance(value, list):
            merged[key] = [*current, *value]
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _intrinsic(value: dict[str, Any]) -> bool:
    if len(value) == 1 and next(iter(value)) in ("Ref", "Condition"):
        return True
    return any(str(k).startswith("Fn::") for k in value)


# -- where --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Where:
    """A place in a template, as an error names it: ``file:line: what``."""

    path: Path
    keys: tuple[str, ...]
    what: str

    def __str__(self) -> str:
        # The line is looked up only when an error is made: the file is read again for it.
        try:
            with open(self.path, encoding="utf-8") as handle:
                root = YAML(typ="rt").load(handle)
        except (OSError, YAMLError):
            return f"{self.path}: {self.what}"
        line, _ = SourceMap(str(self.path), root).locate(list(self.keys))
        return f"{self.path}:{line}: {self.what}"


def _label(keys: Sequence[str]) -> str:
    """What ``keys`` point at, in words: ``resource Api``, ``output Url``."""
    if len(keys) >= 5 and keys[0] == "Resources" and keys[3] == "Parameters":
        return f"application {keys[1]}: parameter {keys[4]}"
    kinds = {"Resources": "resource", "Outputs": "output", "Globals": "Globals"}
    if len(keys) >= 2:
        return f"{kinds.get(keys[0], keys[0])} {keys[1]}"
    return "/".join(keys)
