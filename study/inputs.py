"""Checks of the paths and variables users give the scripts, the sweep and train.py, made
before any work starts: one `error:` line naming the value and the fix instead of a traceback
(or a silent default) an hour into a sweep.

Paths: a folder the run writes into must be a folder or absent (not a file, a dangling
symlink of a purged scratch space, or a symlink loop), every name in it at most NAME_MAX
bytes (a long TAG or grid value otherwise fails with ENAMETOOLONG at the first write), and,
where the caller is about to write, writable. Variables: a list variable that is set but empty
is an error, not the default grid; a value listed twice is an error (two jobs, one folder).
"""
from __future__ import annotations

import errno
import os
import re
from typing import Mapping

from .run import StudyError

NAME_MAX = 255  # bytes per path component on Linux file systems (ext4, xfs, nfs, lustre)

# What CUDA_VISIBLE_DEVICES takes: indices, or GPU-/MIG- UUIDs; "cpu" is the sweep's CPU slot.
GPU_PATTERN = re.compile(r"[0-9]+(,[0-9]+)*|((GPU|MIG)-[A-Za-z0-9/-]+)(,(GPU|MIG)-[A-Za-z0-9/-]+)*")


def check_components(path: str, what: str) -> None:
    """Every name in ``path`` fits in NAME_MAX bytes (TAG and grid values make folder names)."""
    for part in os.fsencode(path).split(b"/"):
        if len(part) > NAME_MAX:
            name = os.fsdecode(part)
            raise StudyError(f"{what}: the name '{name[:40]}...' is {len(part)} bytes, more than "
                             f"the {NAME_MAX} a file name may have; shorten the TAG or grid value "
                             "it is made of")


def check_folder(path: str, what: str, writable: bool = False) -> None:
    """``path`` is a folder or can be made one (and, with ``writable``, written into)."""
    if path == "":
        raise StudyError(f"{what} is empty; give a folder")
    check_components(path, what)
    target = os.path.abspath(path)
    existing = target
    while True:
        try:
            os.stat(existing)
            break
        except OSError as error:
            if error.errno == errno.ELOOP:
                raise StudyError(f"{what}='{path}': {existing} is a symlink loop; point it at "
                                 "a real folder") from None
            if os.path.islink(existing):
                raise StudyError(f"{what}='{path}': {existing} is a symlink to "
                                 f"{os.readlink(existing)}, which does not exist (a purged "
                                 "scratch folder?); make that folder or remove the link") from None
            if error.errno == errno.ENOTDIR:  # a file somewhere above: found by the walk up
                pass
            elif error.errno != errno.ENOENT:
                raise StudyError(f"{what}='{path}': {existing}: {error.strerror}") from None
            existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise StudyError(f"{what}='{path}': {existing} is a file, not a folder; give a folder")
    if writable and not os.access(existing, os.W_OK | os.X_OK):
        raise StudyError(f"{what}='{path}': {existing} is read-only for you; give a folder you "
                         "can write to")


def words(env: Mapping[str, str], name: str, default: str) -> list[str]:
    """A space-separated list variable: its default when unset; set but empty, or holding a
    value twice, is an error (an empty list is not 'all', two equal values are one folder).
    The wording is the sweep's own list check's (study/sweep.py), so both read alike."""
    if name in env and not env[name].split():
        raise StudyError(f"{name} is set but empty; give its values (e.g. {name}=\"{default}\") "
                         "or unset it for the default")
    values = (env[name] if name in env else default).split()
    check_unique(values, name)
    return values


def check_unique(values: list, what: str) -> None:
    seen = set()
    for value in values:
        if value in seen:
            raise StudyError(f"{what} lists {value} more than once; each value once (a value "
                             "twice is two jobs on one run folder)")
        seen.add(value)


def check_gpu(text: str, cpu: bool = False) -> None:
    """A value for CUDA_VISIBLE_DEVICES (the sweep's GPUS also takes 'cpu')."""
    if cpu and text == "cpu" or text and GPU_PATTERN.fullmatch(text):
        return
    extra = ", or cpu" if cpu else ""
    raise StudyError("a GPU must be a device index or list for CUDA_VISIBLE_DEVICES (e.g. 0 or "
                     f"0,1, or a GPU-/MIG- UUID{extra}), got '{text}'")


MAX_SEED = 2**32 - 1  # numpy's seed range (the toolbox seeds numpy, random and torch)


def check_seed_word(word: str) -> None:
    """One SEEDS word: ASCII digits (str.isdigit also takes '١' and '²'), within numpy's range."""
    if not re.fullmatch(r"[0-9]+", word):
        raise StudyError("SEEDS must be non-negative integers separated by spaces (e.g. "
                         f"SEEDS=\"1 2 3\"), got '{word}'")
    if int(word) > MAX_SEED:
        raise StudyError(f"SEEDS: {word} is above {MAX_SEED}, the largest seed numpy takes")


def check_seed(seed: int) -> None:
    """train.py's --seed: a fixed seed (>= 0), or the toolbox's -1 for an unseeded run; any
    other negative number would be silently unseeded."""
    if seed < -1 or seed > MAX_SEED:
        raise StudyError(f"--seed must be from 0 to {MAX_SEED} (fixed) or -1 (unseeded), got "
                         f"{seed}")
