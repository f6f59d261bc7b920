"""PP-OCR-style YAML configs: safe loading, `-o Key.path=value` overrides, and key checking.

Differences from PaddleOCR's `tools/program.py`, on purpose:
- `1e-3` is a float (PyYAML's YAML 1.1 resolver reads it as a string; PaddleOCR then fails or trains at a
  string "learning rate" far from where the value was written);
- several `-o` flags and several pairs after one `-o` all apply, and a value may itself contain `=`;
- override values are YAML-typed (`true`, `[1, 2]`, `null`, `3`, `0.5`);
- unknown sections and keys are errors naming the key path, with "did you mean" (PaddleOCR ignores them);
- a key written twice in one mapping is an error giving both lines (PyYAML keeps the last one silently);
- aliases may not expand a document beyond MAX_YAML_NODES values (a ~1 KB "billion laughs" file of nested
  aliases otherwise becomes a structure whose every printing takes minutes and gigabytes);
- a file over MAX_CONFIG_BYTES is refused unread, a document of more than MAX_YAML_NODES values or nested more
  than MAX_YAML_DEPTH levels while it is read (PyYAML took 15 s and 600 MB for a 1 MB flow list, and a deep one
  ended in a bare RecursionError), and a file that is not UTF-8 is named with the line of its first bad byte;
- an integer with a leading zero (`010`, YAML 1.1 octal: 8) is refused.
"""
from __future__ import annotations

import codecs
import copy
import os
import re

import yaml

from ._checks import check_keys, shown  # check_keys: kept importable from here

__all__ = ["load_config", "parse_overrides", "apply_overrides", "yaml_value", "check_keys", "SafeFloatLoader",
           "ConfigYAMLError", "MAX_YAML_NODES", "MAX_YAML_DEPTH", "MAX_CONFIG_BYTES"]

MAX_YAML_NODES = 100_000  # values in a document with every alias expanded; a large config has a few hundred
MAX_YAML_DEPTH = 100  # levels of nesting; a config nests four or five
MAX_CONFIG_BYTES = 1 << 20  # 1 MiB; a large config is a few KB


class ConfigYAMLError(yaml.constructor.ConstructorError, ValueError):
    """A YAML document refused by SafeFloatLoader (a duplicate key, an alias bomb): a YAMLError and a ValueError."""


class SafeFloatLoader(yaml.SafeLoader):
    """yaml.SafeLoader that also reads `1e-3`, `5E+2` and `.5e1` as floats (YAML 1.2 style), refuses a key
    given twice in one mapping, an integer with a leading zero, a document of more than MAX_YAML_NODES values or
    nested more than MAX_YAML_DEPTH levels, and documents whose aliases expand beyond MAX_YAML_NODES values."""

    def __init__(self, stream):
        super().__init__(stream)
        self._ps_nodes, self._ps_depth = 0, 0

    def compose_node(self, parent, index):
        # Counted while composing (the slow part: ~15 us a value), so a huge document stops early; an alias
        # makes no node and is counted by _check_expansion instead. Nesting is recursion here and later.
        if not self.check_event(yaml.AliasEvent):
            self._ps_nodes += 1
            if self._ps_nodes > MAX_YAML_NODES or self._ps_depth >= MAX_YAML_DEPTH:
                what = (f"more than {MAX_YAML_NODES} values" if self._ps_nodes > MAX_YAML_NODES else
                        f"values nested more than {MAX_YAML_DEPTH} levels deep")
                raise ConfigYAMLError(None, None, f"this document has {what}; a config has a few hundred values, "
                                      f"nested a few levels", self.peek_event().start_mark)
        self._ps_depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._ps_depth -= 1

    def construct_document(self, node):
        _check_expansion(node)
        self._ps_checked = set()
        return super().construct_document(node)

    def construct_yaml_int(self, node):
        digits = node.value.lstrip("+-").replace("_", "")
        if len(digits) > 1 and digits[0] == "0" and digits[1].isdigit():  # 010: YAML 1.1 octal, 8
            octal = f" ({int(digits, 8)})" if len(digits) < 30 and set(digits) <= set("01234567") else ""
            raise ConfigYAMLError(None, None, f"the integer {shown(node.value, 40)} has a leading zero, which YAML "
                                  f"1.1 reads as octal{octal}; write it without the zero (or quote it for a "
                                  f"string)", node.start_mark)
        try:
            return super().construct_yaml_int(node)
        except ValueError:  # Python converts at most 4300 digits (sys.get_int_max_str_digits)
            raise ConfigYAMLError(None, None, f"the integer {shown(node.value, 40)} has {len(node.value)} "
                                  f"characters, more than Python converts", node.start_mark) from None

    def flatten_mapping(self, node):
        # Called on every mapping before its merge keys (<<) are folded in, so node.value is still what the
        # file says; a key that a merge brings in and the mapping sets again is an override, not a duplicate.
        checked = getattr(self, "_ps_checked", set())
        if id(node) not in checked:
            checked.add(id(node))
            first = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(key_node, yaml.ScalarNode):
                    continue
                key = self.construct_object(key_node)
                if key in first:
                    raise ConfigYAMLError(
                        None, None, f"duplicate key {shown(key)}: set at line {first[key].line + 1} and again "
                        f"at line {key_node.start_mark.line + 1} (YAML would keep the last one silently); "
                        f"remove one of them", key_node.start_mark)
                first[key] = key_node.start_mark
        super().flatten_mapping(node)


def _check_expansion(root):
    """Refuse a node graph that has more than MAX_YAML_NODES nodes once every alias is expanded.

    Aliases make the composed document a graph that shares nodes; its expanded size is counted over the
    distinct nodes (memoized by identity), so a billion-laughs document is measured without expanding it.
    """
    size = {}

    def count(node):
        if id(node) in size:
            return size[id(node)]
        size[id(node)] = 1  # a node that contains itself (`&a [*a]`) counts once on the way round
        if isinstance(node, yaml.SequenceNode):
            total = 1 + sum(count(n) for n in node.value)
        elif isinstance(node, yaml.MappingNode):
            total = 1 + sum(count(k) + count(v) for k, v in node.value)
        else:
            total = 1
        size[id(node)] = total
        if total > MAX_YAML_NODES:
            raise ConfigYAMLError(
                None, None, f"this value expands to {total} values or more through aliases (*name); at most "
                f"{MAX_YAML_NODES} are allowed in a config (nested aliases can grow a 1 KB file exponentially, "
                f"a 'billion laughs'); write the values out or reuse fewer levels", node.start_mark)
        return total

    count(root)


SafeFloatLoader.add_constructor("tag:yaml.org,2002:int", SafeFloatLoader.construct_yaml_int)
SafeFloatLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                  |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                  |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
                  |[-+]?\.(?:inf|Inf|INF)
                  |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."))


def yaml_value(text: str, where: str | None = None):
    """The YAML-typed value of an override's right-hand side (`1e-3` -> 0.001, `true` -> True, `a=b` -> 'a=b').
    YAML the loader refuses (a duplicate key, an alias bomb) is a ValueError starting with `where`."""
    try:
        return yaml.load(text, Loader=SafeFloatLoader)
    except ConfigYAMLError as exc:
        raise ValueError(f"{where or '-o value ' + shown(text, 60)}: {exc}") from None
    except yaml.YAMLError:  # not YAML (e.g. `a: b: c`): the text as it is
        return text


# A token that starts another pair: a key path, then '=', then a value that does not start with a YAML tag,
# anchor, flow collection or quote (those may go on after a space: "Global.seed=!!binary aGVsbG8=" is one pair).
_PAIR = re.compile(r"[A-Za-z_][\w-]*(?:\.[\w-]+)*=(?![!&*\[{'\"|>])")


def parse_overrides(items) -> list:
    """[(["A", "b", "c"], value)] from `-o` arguments: each item may hold several space-separated pairs
    (when every space-separated token is one, see _PAIR); a pair splits at its first '='."""
    pairs = []
    for item in items or ():
        for pair in ([item] if isinstance(item, str) else item):
            tokens = pair.split()  # "-o 'A=1 B=2'" is two pairs; "A=hello world" stays one
            for token in tokens if len(tokens) > 1 and all(_PAIR.match(t) for t in tokens) else [pair]:
                key, sep, value = token.partition("=")
                key = key.strip()
                if not sep or not key:
                    raise ValueError(f"-o {shown(token)}: expected Key.path=value (e.g. Global.epoch_num=3).")
                path = key.split(".")
                if any(not part for part in path):
                    raise ValueError(f"-o {shown(token)}: empty part in key path {shown(key)}.")
                pairs.append((path, yaml_value(value, f"-o {key}={shown(value, 60)}")))
    return pairs


def apply_overrides(config: dict, pairs) -> dict:
    """A copy of `config` with each (path, value) set; missing intermediate sections are created."""
    config = copy.deepcopy(config)
    for path, value in pairs:
        node = config
        for i, part in enumerate(path[:-1]):
            nxt = node.get(part)
            if nxt is None:
                nxt = node[part] = {}
            if not isinstance(nxt, dict):
                where = ".".join(path[:i + 1])
                raise ValueError(f"-o {'.'.join(path)}: {where} is {shown(nxt)}, not a section, so it has no key "
                                 f"{shown(path[i + 1])}.")
            node = nxt
        node[path[-1]] = value
    return config


def _read_text(path) -> str:
    """The text of a config file: at most MAX_CONFIG_BYTES, UTF-8 (a BOM is dropped); errors name the file."""
    with open(path, "rb") as f:
        data = f.read(MAX_CONFIG_BYTES + 1)
        if len(data) > MAX_CONFIG_BYTES:
            size = os.fstat(f.fileno()).st_size
            raise ValueError(f"{path}: {f'{size:,} bytes' if size > MAX_CONFIG_BYTES else 'more than that'}; a "
                             f"config may have at most {MAX_CONFIG_BYTES:,} bytes (1 MiB; a large one has a few KB): "
                             f"is this the config file?")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise ValueError(f"{path}: this file is UTF-16 text (it starts with a UTF-16 byte-order mark); save the "
                         f"config as UTF-8.")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - data.rfind(b"\n", 0, exc.start)
        raise ValueError(f"{path}: not UTF-8 text: byte {data[exc.start]:#04x} at line {line}, column {column} "
                         f"(offset {exc.start}); save the config as UTF-8 (a binary file, or Latin-1 / UTF-16 "
                         f"text?).") from None


def load_config(path, overrides=()) -> dict:
    """Read a YAML file with the safe loader (floats and limits as above) and apply `-o` overrides."""
    loader = SafeFloatLoader(_read_text(path))
    loader.name = str(path)  # error marks name the file
    try:
        config = loader.get_single_data()
    finally:
        loader.dispose()
    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise ValueError(f"{path}: the top level must be a mapping of sections, got {type(config).__name__}.")
    return apply_overrides(config, parse_overrides(overrides))
