"""Files inside checkpoint_dir: opened without following links, and parsed within limits.

checkpoint_dir may be shared (a group-writable or sticky world-writable directory). Whoever can create an entry
there could plant a symbolic or hard link where the Trainer writes (`.lock`, `visualization/scalars.jsonl`)
and make it write any file its user can write. So every name below checkpoint_dir is opened relative to its
parent's descriptor with O_NOFOLLOW (no window between a check and the open), a file opened for writing must
be a regular file with one link, and a directory the Trainer fills (a checkpoint being written) is private
(0o700) until it is sealed. checkpoint_dir itself may be a link: that is the user's choice.

The files the Trainer reads back may have been edited by anyone who could write there: a JSON file is refused
above a size and a nesting depth (Python's parser would raise RecursionError, and code walking the value could
too), with a ValueError naming the file and the cause.
"""
from __future__ import annotations

import errno
import json
import os
import shutil
import stat

__all__ = ["UnsafePath", "open_inside", "read_json", "remove", "sealed_mode", "MAX_JSON_DEPTH"]

MAX_JSON_DEPTH = 100
_NO_LINKS = ("the Trainer follows no link inside checkpoint_dir (whoever can create one there could make it write "
             "any file you can write); remove it")


class UnsafePath(OSError):
    """An entry inside checkpoint_dir that the Trainer will not write through (a link, or not a plain file)."""


def _open_entry(name, flags, dir_fd, path, mode):
    try:
        return os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR) and os.path.islink(path):
            raise UnsafePath(exc.errno, f"{path} is a symbolic link; {_NO_LINKS}") from None
        raise OSError(exc.errno, exc.strerror, path) from None


def open_inside(root, relpath, flags, mode=0o644):
    """A descriptor of `root/relpath` ("visualization/scalars.jsonl"), reached from `root` one name at a time
    with O_NOFOLLOW; missing directories are created (0o755) when `flags` has O_CREAT. The file must be a regular
    file with a single link. UnsafePath names the entry that is a link or not a plain file."""
    *dirs, last = relpath.split("/")
    dir_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    path = os.fspath(root)
    try:
        for name in dirs:
            path = os.path.join(path, name)
            if flags & os.O_CREAT:
                try:
                    os.mkdir(name, 0o755, dir_fd=dir_fd)
                except FileExistsError:
                    pass
            inner = _open_entry(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd, path, 0)
            os.close(dir_fd)
            dir_fd = inner
        path = os.path.join(path, last)
        fd = _open_entry(last, flags, dir_fd, path, mode)
    finally:
        os.close(dir_fd)
    st = os.fstat(fd)
    problem = ("is not a regular file" if not stat.S_ISREG(st.st_mode) else
               f"has {st.st_nlink} hard links" if st.st_nlink != 1 else None)
    if problem is not None:
        os.close(fd)
        raise UnsafePath(errno.EPERM, f"{path} {problem}; {_NO_LINKS}")
    return fd


def remove(path):
    """Remove a file, a link (never what it points to) or a directory tree; None, or why it is still there."""
    try:
        if os.path.islink(path) or not os.path.isdir(path):
            os.unlink(path)
        else:
            shutil.rmtree(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def sealed_mode():
    """The mode a directory gets from mkdir under this process's umask (0o777 & ~umask)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            mask = next(int(line.split()[1], 8) for line in f if line.startswith("Umask:"))
    except (OSError, StopIteration, ValueError):  # not Linux: read it by setting it (not thread-safe, but brief)
        mask = os.umask(0o022)
        os.umask(mask)
    return 0o777 & ~mask


def read_json(path, max_bytes=64 << 20):
    """The value of a JSON file, refusing a link, more than `max_bytes` and nesting deeper than MAX_JSON_DEPTH.
    ValueError naming the file (by its base name) and the cause; OSError if it cannot be read."""
    name = os.path.basename(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ELOOP and os.path.islink(path):
            raise ValueError(f"{name} is a symbolic link") from None
        raise
    with os.fdopen(fd, "rb") as f:
        size = os.fstat(fd).st_size
        if size > max_bytes:
            raise ValueError(f"{name} has {size} bytes, more than the {max_bytes} a checkpoint's JSON file may have")
        data = f.read(max_bytes + 1)
    try:
        value = json.loads(data)
    except RecursionError:
        raise ValueError(f"{name} is nested more than {MAX_JSON_DEPTH} levels deep") from None
    except ValueError as exc:  # UnicodeDecodeError included
        raise ValueError(f"{name} is not valid JSON ({type(exc).__name__}: {str(exc)[:200]})") from None
    if _deeper_than(value, MAX_JSON_DEPTH):
        raise ValueError(f"{name} is nested more than {MAX_JSON_DEPTH} levels deep")
    return value


def _deeper_than(value, limit):
    """Whether lists / mappings in `value` nest more than `limit` levels (iteratively: no recursion)."""
    todo = [(value, 1)]
    while todo:
        v, depth = todo.pop()
        if isinstance(v, (list, dict)):
            if depth > limit:
                return True
            todo.extend((x, depth + 1) for x in (v.values() if isinstance(v, dict) else v))
    return False
