"""Names in a config -> the callables they make: a registered built-in name or a dotted import path.

`Architecture.name`, `Train/Eval.dataset.name`, `Loss.name`, `Metric.name` and `Train.loader.collate_fn` take a
built-in name or `package.module.Name` (a class or a function). Naming a module imports it, which runs its code
exactly like `import` does: a config is code, as in PP-OCR. Modules are found on sys.path (PYTHONPATH) and then in
the working directory.

The section's other keys are the arguments of what the name makes; `check_arguments` checks them against its
signature, so a misspelt argument is an error naming the YAML key, with "did you mean", before anything loads.
"""
from __future__ import annotations

import functools
import importlib
import inspect
import os
import sys

from ._checks import did_you_mean, missing_keys_error, shown, unknown_key_error

__all__ = ["import_path", "resolve", "check_arguments", "bind_function", "paddle_losses"]

_P = inspect.Parameter
_NAMED = (_P.POSITIONAL_OR_KEYWORD, _P.KEYWORD_ONLY)


def _search_working_directory():
    """`python tools/train.py` puts tools/ first on sys.path, not the working directory (where `python -c` and
    `python -m` would look): append it, after PYTHONPATH and the installed packages."""
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.append(cwd)


def import_path(where: str, path: str):
    """The object `package.module.Name` names; errors name `where` (the YAML key), the path and why."""
    module_name, _, attr = path.rpartition(".")
    if not module_name or not attr or any(not part.isidentifier() for part in path.split(".")):
        raise ValueError(f"{where}: {shown(path)} is not a dotted import path (package.module.Name).")
    _search_working_directory()
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            raise ValueError(f"{where}: {shown(path)} does not import: no module named {exc.name!r} on PYTHONPATH "
                             f"or in the working directory {os.getcwd()}.") from None
        raise ValueError(f"{where}: {shown(path)} does not import: importing {module_name!r} raised "
                         f"ModuleNotFoundError: {exc}") from exc
    except Exception as exc:  # the module's own code failed (naming a module runs it)
        raise ValueError(f"{where}: {shown(path)} does not import: importing {module_name!r} raised "
                         f"{type(exc).__name__}: {exc}") from exc
    if not hasattr(module, attr):
        public = [n for n in dir(module) if not n.startswith("_")]
        raise ValueError(f"{where}: {shown(path)} does not import: module {module_name!r} "
                         f"({getattr(module, '__file__', None)}) has no attribute {attr!r}."
                         f"{did_you_mean(attr, public)}")
    return getattr(module, attr)


def resolve(where: str, name, builtins, *, what: str = "a class or a function"):
    """builtins[name] for a registered name, else the object of a dotted import path, which must be `what`
    (a class or a function). Returns (object, is_builtin)."""
    if not isinstance(name, str) or not name:
        raise TypeError(f"{where} must be a name ({', '.join(builtins)}) or an import path package.module.Name, "
                        f"got {shown(name)} ({type(name).__name__}).")
    if name in builtins:
        return builtins[name], True
    if "." not in name:
        raise ValueError(f"{where}: {shown(name)} is not available; allowed: {', '.join(builtins)}, or an import "
                         f"path package.module.Name (a class or a function).{did_you_mean(name, builtins)}")
    obj = import_path(where, name)
    if not (inspect.isclass(obj) or callable(obj)):
        raise TypeError(f"{where}: {shown(name)} is a {type(obj).__name__}, not {what}.")
    return obj, False


def _signature(where, obj):
    try:
        return inspect.signature(obj)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{where}: cannot read the signature of {getattr(obj, '__qualname__', obj)!r} to check the "
                        f"section's keys against it ({exc}); wrap it in a Python function or class.") from None


def check_arguments(where: str, obj, given: dict, *, skip: int = 0, name: str = "") -> dict:
    """Refuse keys of `given` that `obj`'s signature does not take (with "did you mean") and required arguments
    that are missing. `skip`: leading positional parameters that the caller passes itself (a loss function's
    output and label). Returns `given`."""
    params = list(_signature(where, obj).parameters.values())
    positional = [p for p in params if p.kind in (_P.POSITIONAL_ONLY, _P.POSITIONAL_OR_KEYWORD)]
    if skip and (len(positional) < skip and not any(p.kind == _P.VAR_POSITIONAL for p in params)):
        raise TypeError(f"{where}: {name or obj!r} takes {len(positional)} positional argument(s); it is called "
                        f"with {skip}.")
    rest = [p for p in params if p not in positional[:skip]]
    allowed = [p.name for p in rest if p.kind in _NAMED]
    takes_any = any(p.kind == _P.VAR_KEYWORD for p in rest)
    for key, value in given.items():
        if key not in allowed and not takes_any:
            raise unknown_key_error(where, key, allowed, value=value,
                                    why=f" ({name or getattr(obj, '__qualname__', obj)} takes no such argument)")
    missing = [p.name for p in rest if p.kind in _NAMED and p.default is _P.empty and p.name not in given]
    if missing:
        raise missing_keys_error(where, missing, allowed,
                                 hint=f"{name or getattr(obj, '__qualname__', obj)} requires them.")
    return given


def bind_function(fn, kwargs: dict):
    """fn with `kwargs` bound (functools.partial), keeping fn's __name__ (a metric's name in the logs)."""
    if not kwargs:
        return fn
    return functools.update_wrapper(functools.partial(fn, **kwargs), fn)


def paddle_losses() -> dict:
    """{class name: class} of every loss in paddle.nn (the classes whose name ends with 'Loss')."""
    import paddle
    return {n: getattr(paddle.nn, n) for n in sorted(dir(paddle.nn))
            if n.endswith("Loss") and inspect.isclass(getattr(paddle.nn, n))
            and issubclass(getattr(paddle.nn, n), paddle.nn.Layer)}
