"""Typed configs: dataclasses filled from defaults, then a YAML file, then `key=value` overrides.

    cfg = load_config(NPOConfig, "run.yaml", ["beta=0.2", "lora.r=16"])

Values given as text are converted to the field's declared type; unknown keys are errors that
name the file (or `--set`) and the key.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib.resources
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from obliviate.errors import ObliviateError

T = TypeVar("T")
METHOD_KEY = "method"  # the key naming the method in a run's config.yaml


def recipes_folder(kind: str) -> Path:
    """Where the package keeps its recipes of one kind: obliviate/recipes/<kind>/ ("methods" for the tiny world
    models, UniErase's included, "pretrained" for a ~100M-parameter chat model with LoRA, "tofu" for the TOFU
    benchmark, "accelerate"), the same from a wheel and a checkout."""
    return Path(str(importlib.resources.files("obliviate") / "recipes" / kind))


def recipe_file(kind: str, method: str, required: bool = False) -> Path | None:
    """A method's recipe shipped with the package, obliviate/recipes/<kind>/<method>.yaml; when there is none,
    None, or with `required` a one-line error naming the method and the folder looked in."""
    folder = recipes_folder(kind)
    path = folder / f"{method}.yaml"
    if path.is_file():
        return path
    if required:
        raise ObliviateError(f"no recipe for method '{method}': {path.name} is not in {folder}")
    return None


def config_path(value: str | Path) -> Path:
    """A YAML file, or a packaged recipe named KIND/METHOD (e.g. pretrained/finetune) when no such file exists."""
    path = Path(value)
    if path.is_file():
        return path
    kind, _, method = str(value).removesuffix(".yaml").partition("/")
    packaged = recipe_file(kind, method) if method and "/" not in method else None
    if packaged is None:
        raise ObliviateError(f"--config {value}: no such file, nor a packaged recipe KIND/METHOD "
                             "(e.g. pretrained/finetune)")
    return packaged


def _convert(value: Any, annotation: Any, where: str) -> Any:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            if type(None) in args:
                return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(value, arg, where)
            except ObliviateError as err:
                errors.append(str(err))
        raise ObliviateError(errors[0] if errors else f"{where}: cannot convert {value!r}")
    if dataclasses.is_dataclass(annotation):
        if isinstance(value, annotation):
            return value
        if not isinstance(value, dict):
            raise ObliviateError(f"{where}: expected a mapping, got {value!r}")
        return _fill(annotation(), value, where)
    if origin in (list, tuple):
        if isinstance(value, str):
            value = yaml.safe_load(value) if value.strip().startswith("[") else [v for v in value.split(",") if v]
        if not isinstance(value, (list, tuple)):
            value = [value]
        item = args[0] if args else Any
        return [_convert(v, item, where) for v in value]
    if origin is dict:
        if isinstance(value, str):
            value = yaml.safe_load(value)
        if not isinstance(value, dict):
            raise ObliviateError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if origin is typing.Literal:
        if value not in args:
            raise ObliviateError(f"{where}: {value!r} is not one of {', '.join(map(str, args))}")
        return value
    if annotation is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "yes", "1", "on", "false", "no", "0", "off"):
            return value.lower() in ("true", "yes", "1", "on")
        raise ObliviateError(f"{where}: expected true/false, got {value!r}")
    if annotation in (int, float, str):
        if isinstance(value, bool) and annotation is not str:
            raise ObliviateError(f"{where}: expected {annotation.__name__}, got {value!r}")
        try:
            if annotation is int and isinstance(value, float) and not value.is_integer():
                raise ValueError
            if annotation is int and isinstance(value, str):
                return int(float(value)) if float(value).is_integer() else int(value)
            return annotation(value)
        except (TypeError, ValueError):
            raise ObliviateError(f"{where}: expected {annotation.__name__}, got {value!r}") from None
    return value


def _fill(obj: T, values: dict, where: str) -> T:
    hints = typing.get_type_hints(type(obj))
    names = {f.name for f in dataclasses.fields(obj)}
    for key, value in values.items():
        head, _, rest = str(key).partition(".")
        if head not in names:
            raise ObliviateError(f"{where}: unknown setting '{head}' for {type(obj).__name__} "
                                 f"(known: {', '.join(sorted(names))})")
        if rest:
            child = getattr(obj, head)
            if not dataclasses.is_dataclass(child):
                raise ObliviateError(f"{where}: setting '{head}' has no sub-setting '{rest}'")
            _fill(child, {rest: value}, where)
        else:
            setattr(obj, head, _convert(value, hints[head], f"{where}: setting '{key}'"))
    return obj


def parse_overrides(overrides: list[str] | None) -> dict[str, str]:
    parsed = {}
    for item in overrides or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ObliviateError(f"--set {item!r}: expected key=value")
        parsed[key.strip()] = value.strip()
    return parsed


def read_config_file(path: str | Path) -> dict:
    """The mapping of settings in a YAML config file; a missing or malformed file is a one-line error."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ObliviateError(f"{path}: config file not found") from None
    except yaml.YAMLError as err:
        raise ObliviateError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ObliviateError(f"{path}: a config file must hold a mapping of settings")
    return data


def config_method(path: str | Path) -> str | None:
    """The method a config file names (`method:`, as a run's config.yaml does), or None."""
    method = read_config_file(path).get(METHOD_KEY)
    return None if method is None else str(method)


def load_config(cls: type[T], path: str | Path | None = None, overrides: list[str] | None = None,
                base: T | None = None, method: str | None = None) -> T:
    """Defaults of `cls` (or `base`), then the YAML file at `path`, then `key=value` overrides. With `method`,
    the file may name its method (`method:`, as a run's config.yaml does), and it must be that one."""
    cfg = base if base is not None else cls()
    if path is not None:
        data = read_config_file(path)
        if method is not None and METHOD_KEY in data:
            named = data.pop(METHOD_KEY)
            if named != method:
                raise ObliviateError(f"{path}: the config is for method '{named}', not '{method}'")
        _fill(cfg, data, str(path))
    _fill(cfg, parse_overrides(overrides), "--set")
    return cfg


def resolve_config(cls: type[T], config: str | Path | T | None = None, overrides: list[str] | None = None,
                   method: str | None = None) -> T:
    """A method's settings: the defaults of `cls`, then `config` (a YAML file, which may name the method, or an
    instance of `cls` as the base), then "key=value" `overrides`. The one route of every method's config."""
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        if not isinstance(config, cls):
            raise ObliviateError(f"method {method} takes a {cls.__name__}, got a {type(config).__name__}")
        return load_config(cls, None, overrides, base=copy.deepcopy(config))
    return load_config(cls, config, overrides, method=method)


def config_to_dict(cfg: Any, method: str | None = None) -> dict:
    """The config's settings; with `method`, headed by `method: <name>` (a run's config.yaml)."""
    return ({METHOD_KEY: method} if method is not None else {}) | dataclasses.asdict(cfg)
