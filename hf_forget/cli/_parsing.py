"""What every `hf-forget` command parses with: one-line errors, ``--config FILE`` and a grouped ``--help``.

A command module builds its parser in ``make_parser()`` from one of the two classes here and parses with
``parser.parse_args_and_config(argv)``:

- :class:`CommandParser`, a plain ``argparse.ArgumentParser``, for commands with a handful of options;
- :class:`DataclassArgumentParser`, an ``HfArgumentParser``, for commands whose options are dataclass fields
  (a script-arguments dataclass and a ``TrainingArguments`` subclass). Its ``--help`` shows the command's own
  arguments first, then the forgetting settings (fields our configs declare), then the Trainer settings (the
  fields of ``transformers.TrainingArguments``), each under its own title.

Both read ``--config FILE`` (YAML or JSON, a mapping of option names to values) as defaults: the command line
overrides the file. A key the command does not know, like any unknown flag or bad value, is a
:class:`~hf_forget.errors.ForgetInputError`: the CLI prints one line and exits with code 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Iterable, Sequence
from typing import Any, get_type_hints

from transformers import TrainingArguments
from transformers.hf_argparser import HfArgumentParser

from ..errors import ForgetInputError

CONFIG_OPTION = "--config"
CONFIG_HELP = (
    "Read option values from a YAML or JSON file (a mapping such as 'max_steps: 200'); options given on the "
    "command line override them."
)
USAGE = "%(prog)s [-h] [--config FILE] [--option VALUE ...]"
_TRAINING_ARGUMENTS_FIELDS = frozenset(f.name for f in dataclasses.fields(TrainingArguments))
_FLAG_ACTIONS = (argparse._StoreTrueAction, argparse._StoreFalseAction, argparse.BooleanOptionalAction)


# --- --config FILE -----------------------------------------------------------------------------------------------
def split_config_option(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """``(config files, the other arguments)``: every ``--config FILE`` / ``--config=FILE`` taken out of ``argv``."""
    files, rest, i = [], [], 0
    argv = list(argv)
    while i < len(argv):
        arg = argv[i]
        if arg == "--":  # everything after it is positional
            rest.extend(argv[i:])
            break
        if arg == CONFIG_OPTION:
            if i + 1 >= len(argv) or argv[i + 1].startswith("-"):
                raise ForgetInputError(f"argument {CONFIG_OPTION}: expected one argument (a .yaml or .json file).")
            files.append(argv[i + 1])
            i += 2
            continue
        if arg.startswith(CONFIG_OPTION + "="):
            files.append(arg.split("=", 1)[1])
        else:
            rest.append(arg)
        i += 1
    return files, rest


def read_config_file(path: str) -> dict[str, Any]:
    """The mapping in a YAML (``.yaml``/``.yml``) or JSON file; anything else is read as YAML (JSON is YAML)."""
    if not os.path.isfile(path):
        raise ForgetInputError(f"config file {path!r} does not exist: pass {CONFIG_OPTION} FILE.yaml or FILE.json.")
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    try:
        if path.endswith(".json"):
            values = json.loads(text)
        else:
            import yaml  # noqa: PLC0415 - only when a config file is given

            values = yaml.safe_load(text)
    except ValueError as error:  # json.JSONDecodeError
        raise ForgetInputError(f"config file {path!r} is not valid JSON ({error}).") from None
    except Exception as error:  # yaml.YAMLError
        first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ForgetInputError(f"config file {path!r} is not valid YAML ({first_line}).") from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ForgetInputError(
            f"config file {path!r} must hold a mapping of option names to values, e.g. 'max_steps: 200'."
        )
    return values


def config_values(argv: Sequence[str]) -> dict[str, Any]:
    """The values of every ``--config`` file in ``argv``, later files overriding earlier ones."""
    files, _ = split_config_option(argv)
    values: dict[str, Any] = {}
    for path in files:
        values.update(read_config_file(path))
    return values


def _given(action: argparse.Action, argv: Sequence[str]) -> bool:
    return any(arg == option or arg.startswith(option + "=") for arg in argv for option in action.option_strings)


def _convert(action: argparse.Action, key: str, value: Any, source: str) -> Any:
    """A file value as the command line would have given it: through the option's ``type`` and ``choices``."""
    if value is None:
        return None
    if action.nargs in ("+", "*") or isinstance(action, argparse._AppendAction):
        return [_convert_one(action, key, item, source) for item in (value if isinstance(value, list) else [value])]
    if isinstance(value, list) and not isinstance(action.default, list):
        raise ForgetInputError(f"{source}: {key!r} takes one value, not a list.")
    return _convert_one(action, key, value, source)


def _convert_one(action: argparse.Action, key: str, value: Any, source: str) -> Any:
    if isinstance(action, _FLAG_ACTIONS):
        if isinstance(value, str) and value.lower() in ("true", "yes", "1", "false", "no", "0"):
            value = value.lower() in ("true", "yes", "1")
        if not isinstance(value, bool):
            raise ForgetInputError(f"{source}: {key!r} takes true or false.")
        return value
    if isinstance(value, str) and callable(action.type):
        try:
            value = action.type(value)
        except (TypeError, ValueError, argparse.ArgumentTypeError):
            kind = getattr(action.type, "__name__", "valid")
            raise ForgetInputError(f"{source}: {key!r} takes a {kind} value.") from None
    if action.choices is not None and value not in action.choices:
        choices = ", ".join(map(str, action.choices))
        raise ForgetInputError(f"{source}: {key!r} takes one of: {choices}.")
    return value


def positive_int(value: str) -> int:
    """An ``argparse`` type: a whole number >= 1 (``type=positive_int``)."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {number}")
    return number


def non_negative_int(value: str) -> int:
    """An ``argparse`` type: a whole number >= 0 (``type=non_negative_int``)."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {value!r}") from None
    if number < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {number}")
    return number


class RepeatedListAction(argparse.Action):
    """A list option (``nargs="+"``) that accumulates when repeated: ``--names A --names B`` is ``--names A B``.

    argparse's default for ``nargs="+"`` keeps the last occurrence only, which would silently drop a person the
    user listed. The first occurrence replaces the default (or the ``--config`` file's value); later ones add.
    """

    def __call__(self, parser, namespace, values, option_string=None):
        current = getattr(namespace, self.dest, None)
        first = current is self.default or not isinstance(current, list)  # argparse set the default object itself
        values = values if isinstance(values, list) else [values]
        setattr(namespace, self.dest, list(values) if first else [*current, *values])


class _ListOptionsAccumulate:
    """An argument container whose list options (``nargs="+"``/``"*"``) use :class:`RepeatedListAction`."""

    def __init__(self, container):
        self._container = container

    def add_argument(self, *args, **kwargs):
        if kwargs.get("nargs") in ("+", "*") and "action" not in kwargs:
            kwargs["action"] = RepeatedListAction
        return self._container.add_argument(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._container, name)


class _ConfigFileMixin:
    """``--config FILE`` as defaults, one-line errors and no abbreviated options, for both parser classes."""

    def error(self, message: str):  # argparse prints the usage and exits 2; the CLI prints one line instead
        raise ForgetInputError(message)

    def _add_config_option(self, container) -> None:
        container.add_argument(CONFIG_OPTION, metavar="FILE", default=argparse.SUPPRESS, help=CONFIG_HELP)

    def apply_config(self, values: dict[str, Any], argv: Sequence[str] = (), source: str = "config file") -> None:
        """Make ``values`` (option name -> value) the defaults, so that what ``argv`` gives overrides them."""
        actions: dict[str, list[argparse.Action]] = {}
        for action in self._actions:
            if action.dest not in (argparse.SUPPRESS, "help", "config"):
                actions.setdefault(action.dest, []).append(action)
        keys = {key: str(key).replace("-", "_") for key in values}
        unknown = sorted(str(key) for key, dest in keys.items() if dest not in actions)
        if unknown:
            raise ForgetInputError(
                f"{source}: unknown key(s) {', '.join(map(repr, unknown))}: not options of `{self.prog}` (see --help)."
            )
        for key, value in values.items():
            for action in actions[keys[key]]:
                if isinstance(action, argparse._AppendAction) and _given(action, argv):
                    continue  # the command line's values replace the file's instead of adding to them
                if isinstance(action, argparse._StoreFalseAction) and action.option_strings[0].startswith("--no"):
                    continue  # the --no_X twin of a boolean field shares its dest; the --X action holds the default
                action.default = _convert(action, str(key), value, source)
                action.required = False

    def _argv_with_config(self, argv: Sequence[str] | None) -> list[str]:
        argv = list(sys.argv[1:] if argv is None else argv)
        files, rest = split_config_option(argv)
        for path in files:
            self.apply_config(read_config_file(path), rest, source=path)
        return rest


# --- argparse commands --------------------------------------------------------------------------------------------
class CommandParser(_ConfigFileMixin, argparse.ArgumentParser):
    """``argparse.ArgumentParser`` for a command: ``--config FILE``, one-line errors, no abbreviations."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)
        self._add_config_option(self)

    def parse_args_and_config(self, argv: Sequence[str] | None = None) -> argparse.Namespace:
        return self.parse_args(self._argv_with_config(argv))


# --- dataclass commands -------------------------------------------------------------------------------------------
COMMAND_GROUP = "command arguments"
FORGETTING_GROUP = "forgetting settings ({})"
TRAINER_GROUP = "Trainer settings (transformers.TrainingArguments)"


class DataclassArgumentParser(_ConfigFileMixin, HfArgumentParser):
    """``HfArgumentParser`` whose ``--help`` groups the options: the command's own, forgetting, Trainer.

    The fields of a dataclass that is not a ``TrainingArguments`` go to "command arguments", with ``-h`` and
    ``--config``. A ``TrainingArguments`` subclass is split: the fields ``transformers.TrainingArguments``
    declares (including those whose default we change, such as ``learning_rate``) go to "Trainer settings",
    the others (ours) to "forgetting settings". Options added later with ``add_command_argument`` join the
    command's own group.
    """

    def __init__(self, dataclass_types: Iterable[type], **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        kwargs.setdefault("usage", USAGE)
        kwargs["add_help"] = False  # -h goes into the command's group, above the rest
        self._help_groups: dict[str, argparse._ArgumentGroup] = {}
        super().__init__(dataclass_types, **kwargs)
        self._group(COMMAND_GROUP)  # also when no dataclass has command fields

    def _group(self, title: str) -> argparse._ArgumentGroup:
        if not self._help_groups:
            command = self._help_groups[COMMAND_GROUP] = self.add_argument_group(COMMAND_GROUP)
            command.add_argument("-h", "--help", action="help", help="Show this help message and exit.")
            self._add_config_option(command)
        if title not in self._help_groups:
            self._help_groups[title] = self.add_argument_group(title)
        return self._help_groups[title]

    def _group_for(self, dtype: type, field: dataclasses.Field) -> argparse._ArgumentGroup:
        if not issubclass(dtype, TrainingArguments):
            return self._group(COMMAND_GROUP)
        forgetting = self._group(FORGETTING_GROUP.format(dtype.__name__))  # created first, printed first
        return self._group(TRAINER_GROUP) if field.name in _TRAINING_ARGUMENTS_FIELDS else forgetting

    def _add_dataclass_arguments(self, dtype: type) -> None:  # HfArgumentParser's, with a group for each field
        try:
            type_hints = get_type_hints(dtype)
        except NameError:
            raise RuntimeError(f"Type resolution failed for {dtype}: declare the class in global scope.") from None
        for field in dataclasses.fields(dtype):
            if field.init:
                field.type = type_hints[field.name]
                self._parse_dataclass_field(_ListOptionsAccumulate(self._group_for(dtype, field)), field)

    def add_command_argument(self, *args, **kwargs) -> argparse.Action:
        """An option that is no dataclass field (it comes back in a namespace after the dataclasses)."""
        return self._group(COMMAND_GROUP).add_argument(*args, **kwargs)

    def require(self, dest: str) -> None:
        """Make an option that has a default (e.g. ``output_dir``) required: on the command line or in a file."""
        for action in self._actions:
            if action.dest == dest and action.option_strings and not action.option_strings[0].startswith("--no"):
                action.required = True

    def parse_args_and_config(self, argv: Sequence[str] | None = None) -> tuple:
        """The dataclass instances (then a namespace of the other options, if any) from ``--config`` and ``argv``."""
        outputs = self.parse_args_into_dataclasses(
            args=self._argv_with_config(argv), return_remaining_strings=True, look_for_args_file=False
        )
        *outputs, remaining = outputs
        if remaining:  # the flags only: a stray value may be a name, and names are never printed
            shown = " ".join(arg if arg.startswith("-") else "<value>" for arg in remaining)
            self.error(f"unrecognized arguments: {shown}")
        return tuple(outputs)
