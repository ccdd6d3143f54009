"""Settings declared once: a dataclass field holds a setting's default and help, and is also its flag.

    @dataclass(frozen=True)
    class TrainConfig:
        output_dir: str = setting(help="Folder for the run's outputs.")                  # no default: required
        learning_rate: float = setting(1e-4, "Peak learning rate of AdamW.")
        amp: bool = setting(False, "Mixed precision on GPU.", aliases=("--use_amp",))

        def __post_init__(self):                                                          # the checks, once
            if not self.learning_rate > 0:
                raise UserError(...)

    add_flags(parser, TrainConfig, defaults={"learning_rate": 5e-5})   # --output_dir, --learning_rate, --amp/--use_amp
    config = from_args(TrainConfig, parser.parse_args())

A field without help (setting() not used) is no flag: the config's own derived values. A boolean is a
store_true flag; with `negation` it also gets --no_NAME, whose help shows no default (the positive flag's
help says it once). Per-script defaults go in add_flags(defaults=...) (dataclasses.MISSING: required here),
narrower choices in add_flags(choices=...), flags a script does not read in add_flags(skip=...) (from_args
gives those fields their defaults); parser.set_defaults keeps working. A script whose flag means something
else than the library's (another default described in its help) declares it in a small subclass:

    @dataclass(frozen=True)
    class PredictLength(EncodeConfig):
        max_seq_length: int | None = like(EncodeConfig, "max_seq_length", default=None, help="... (default: ...)")
"""
from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from typing import Any, Mapping, Sequence


def setting(default: Any = dataclasses.MISSING, help: str = "", *, aliases: Sequence[str] = (),
            choices: Sequence[str] | None = None, negation: str | None = None, group: str | None = None,
            metavar: str | None = None, text: type | None = None) -> Any:
    """A dataclass field that is also a flag --NAME: `aliases` are further option strings, `negation` the
    help of a --no_NAME that turns a boolean off, `group` the --help section (add_flags on a parser),
    `text` the flag's type where the field's differs (the config converts it when built: --labels a,b)."""
    if not help:
        raise ValueError("a setting needs its help text")
    meta = {"help": help, "aliases": tuple(aliases), "choices": tuple(choices) if choices else None,
            "negation": negation, "group": group, "metavar": metavar, "text": text}
    return dataclasses.field(default=default, metadata={"flag": meta})


def like(cls: type, name: str, **changes: Any) -> Any:
    """The setting `name` of `cls` declared again in another config, with `changes` to setting()'s
    arguments (default, help, group, ...): one flag shared by configs that each need it."""
    found = {f.name: f for f in dataclasses.fields(cls)}[name]
    meta = dict(found.metadata["flag"])
    default = changes.pop("default", found.default)
    meta.update(changes)
    return setting(default, **meta)


def flag_fields(cls: type) -> list[dataclasses.Field]:
    """The fields of `cls` declared with setting(), in declaration order."""
    return [f for f in dataclasses.fields(cls) if "flag" in f.metadata]


class TurnOff(argparse.Action):
    """--no_NAME of a boolean setting: sets it False. Its default is never shown (cli.HelpFormatter), so
    --help states the setting's default once, on --NAME."""

    def __init__(self, option_strings: Sequence[str], dest: str, help: str | None = None, **kwargs: Any):
        kwargs.pop("default", None)
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=help, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        setattr(namespace, self.dest, False)


def add_flags(target: argparse.ArgumentParser | Any, cls: type, defaults: Mapping[str, Any] | None = None,
              choices: Mapping[str, Sequence[str]] | None = None, skip: Sequence[str] = ()) -> None:
    """Add a flag for every setting of `cls` to a parser (fields with a group go in that argument group)
    or to one argument group. For this script: `defaults` replaces some fields' defaults, `choices` some
    fields' choices (a subset), and the settings in `skip` get no flag (the script does not read them)."""
    defaults, choices = dict(defaults or {}), dict(choices or {})
    fields = flag_fields(cls)
    unknown = (set(defaults) | set(choices) | set(skip)) - {f.name for f in fields}
    if unknown:
        raise ValueError(f"settings {cls.__name__} lacks: {sorted(unknown)}")
    hints = typing.get_type_hints(cls)
    groups: dict[str, Any] = {}
    for f in fields:
        if f.name in skip:
            continue
        meta = dict(f.metadata["flag"])
        if f.name in choices:
            if not set(choices[f.name]) <= set(meta["choices"] or ()):
                raise ValueError(f"--{f.name}: {choices[f.name]} are not among its choices {meta['choices']}")
            meta["choices"] = tuple(choices[f.name])
        where = target
        if meta["group"] and isinstance(target, argparse.ArgumentParser):
            where = groups.get(meta["group"]) or groups.setdefault(meta["group"],
                                                                   target.add_argument_group(meta["group"]))
        kind = meta["text"] or _plain_type(hints[f.name])
        _add_flag(where, f.name, meta, kind, defaults.get(f.name, f.default))


def _add_flag(where: Any, name: str, meta: Mapping[str, Any], kind: type, default: Any) -> None:
    names = [f"--{name}", *meta["aliases"]]
    given = {"required": True} if default is dataclasses.MISSING else {"default": default}
    if kind is bool:
        if default is True and not meta["negation"]:
            raise ValueError(f"--{name} is on by default: give it a negation to turn it off")
        where.add_argument(*names, dest=name, action="store_true", help=meta["help"], **given)
        if meta["negation"]:
            where.add_argument(f"--no_{name}", dest=name, action=TurnOff, help=meta["negation"])
        return
    where.add_argument(*names, dest=name, type=kind, choices=meta["choices"], metavar=meta["metavar"],
                       help=meta["help"], **given)


def _plain_type(hint: Any) -> type:
    """str | None -> str: the type a flag's text is converted with."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        kinds = [k for k in typing.get_args(hint) if k is not type(None)]
        if len(kinds) == 1:
            return kinds[0]
    if isinstance(hint, type):
        return hint
    raise TypeError(f"a setting's type must be str, int, float or bool (or one of them | None), not {hint}")


def from_args(cls: type, args: argparse.Namespace, **given: Any):
    """The `cls` of the parsed flags (its checks run as it is built); `given` sets fields that are no flags
    or overrides parsed ones. A setting the script made no flag of (add_flags' skip) takes its default."""
    values = {f.name: getattr(args, f.name) for f in flag_fields(cls) if hasattr(args, f.name)}
    return cls(**{**values, **given})


def plain_values(args: argparse.Namespace) -> dict[str, Any]:
    """The parsed flags that JSON keeps as they are (the command line a run records)."""
    return {k: v for k, v in vars(args).items() if isinstance(v, (str, int, float, bool, type(None), list))}
