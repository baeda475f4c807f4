"""Whether a configuration file can be trusted by a daemon running as root.

A file that decides what runs as root (inetd.conf, xinetd.conf and its includes,
syslog.conf) is only as safe as the least protected thing that can change it: the file
itself, every directory above it, and every directory holding a symbolic link on the
way. If any of those is writable by a user other than root, that user can make the
daemon run a program of theirs as root, or write wherever root can.

The rule is sshd's StrictModes (auth.c secure_filename: the file and each directory up
to / owned by root or by the user, and not writable by group or others), applied to
the path as the kernel resolves it, symbolic links included: a link is followed, and
both the directory holding it and the directories of its target are checked, so a
link in a user's directory that points back into /etc is still caught. One exception
sshd does not need: a directory writable by everyone but sticky (/tmp, mode 1777) is
acceptable on the way, provided the entry below it belongs to a trusted owner, since
the sticky bit keeps other users from renaming or removing that entry.

Trusted owners are root and the effective user running the check (a non-root user
running the daemon on their own files is not refused). Group write is refused even
for group root, as sshd does: the check is meant to be explained in one sentence.
"""

from __future__ import annotations

import grp
import os
import pwd
import stat
from collections import deque

from ..errors import ConfigError

_MAX_LINKS = 40  # the kernel's own limit on symbolic links in one resolution (ELOOP)


class UntrustedPath(ConfigError):
    """A configuration file that a user other than root (or ourselves) could change."""


def trusted_owners() -> frozenset[int]:
    """Root and the effective user: whose files and directories we may rely on."""
    return frozenset({0, os.geteuid()})


def untrusted_reason(path: str | os.PathLike[str], *,
                     owners: frozenset[int] | None = None) -> str | None:
    """Why `path` cannot be trusted, naming the file or directory at fault; None when
    only trusted owners (default: root and our effective user) can change what it says.

    A path that does not exist, or that cannot be examined, has no reason: reading it
    will fail on its own, with its own message.
    """
    owners = trusted_owners() if owners is None else owners
    pending = deque(_parts(os.fspath(path)))
    try:
        current, current_st = "/", os.lstat("/")
        links = 0
        while pending:
            name = pending.popleft()
            if name == "..":
                current = os.path.dirname(current)  # already checked on the way down
                current_st = os.lstat(current)
                continue
            entry = os.path.join(current, name)
            st = os.lstat(entry)
            reason = replaceable_reason(current, current_st, entry, st, owners)
            if reason:
                return reason
            if stat.S_ISLNK(st.st_mode):
                links += 1
                if links > _MAX_LINKS:
                    return f"{path}: too many levels of symbolic links"
                target = os.readlink(entry)
                if target.startswith("/"):
                    current, current_st = "/", os.lstat("/")
                pending.extendleft(reversed(_parts(target)))
            elif pending:
                if not stat.S_ISDIR(st.st_mode):
                    return None  # ENOTDIR: the reader's own error says it better
                current, current_st = entry, st
            else:
                return _final_reason(entry, st, owners)
        return _directory_reason(current, current_st, owners) or \
            _final_reason(current, current_st, owners)
    except OSError:
        return None


def untrusted_way(path: str | os.PathLike[str], *,
                  owners: frozenset[int] | None = None) -> str | None:
    """Why what root is about to make at `path`, with any directory missing above it,
    could be redirected or replaced by a user who is not a trusted owner; None when none
    could. untrusted_reason has no reason for a path that does not exist, so the nearest
    part of `path` that exists is checked: where the first directory would be made."""
    existing = os.fspath(path)
    while not os.path.lexists(existing):
        parent = os.path.dirname(existing) or "."
        if parent == existing:
            break
        existing = parent
    return untrusted_reason(existing, owners=owners)


def replaceable_reason(directory: str, directory_st: os.stat_result, entry: str,
                       entry_st: os.stat_result, owners: frozenset[int]) -> str | None:
    """Why a user who is not a trusted owner could replace `entry` (a file, directory or
    symbolic link in `directory`) with one of their own; None when none could."""
    reason = _directory_reason(directory, directory_st, owners)
    if reason is None and _shared_sticky(directory_st.st_mode) and entry_st.st_uid not in owners:
        reason = (f"{entry} belongs to {_user(entry_st.st_uid)} and sits in {directory}, "
                  "which others may write to")
    return reason


def check_trusted(path: str | os.PathLike[str], *,
                  owners: frozenset[int] | None = None) -> None:
    """Raise UntrustedPath (a ConfigError naming `path`) unless it can be trusted."""
    reason = untrusted_reason(path, owners=owners)
    if reason is not None:
        raise UntrustedPath(f"not loaded: {reason}; a file that decides what runs as root "
                            "must be writable by root alone (chown root, chmod go-w)",
                            os.fspath(path))


def _parts(path: str) -> list[str]:
    return [p for p in path.split("/") if p not in ("", ".")]


def _shared_sticky(mode: int) -> bool:
    """Writable by others, but sticky: they may add entries, not replace ours."""
    return bool(mode & (stat.S_IWGRP | stat.S_IWOTH)) and bool(mode & stat.S_ISVTX)


def _directory_reason(path: str, st: os.stat_result, owners: frozenset[int]) -> str | None:
    if st.st_uid not in owners:
        return f"the directory {path} belongs to {_user(st.st_uid)}"
    if _shared_sticky(st.st_mode):
        return None  # (/tmp) the next entry's owner is checked by the caller
    return _mode_reason(f"the directory {path}", st)


def _final_reason(path: str, st: os.stat_result, owners: frozenset[int]) -> str | None:
    if st.st_uid not in owners:
        return f"{path} belongs to {_user(st.st_uid)}"
    return _mode_reason(path, st)


def _mode_reason(what: str, st: os.stat_result) -> str | None:
    if st.st_mode & stat.S_IWOTH:
        return f"{what} is writable by everyone (mode {stat.S_IMODE(st.st_mode):04o})"
    if st.st_mode & stat.S_IWGRP:
        return (f"{what} is writable by group {_group(st.st_gid)} "
                f"(mode {stat.S_IMODE(st.st_mode):04o})")
    return None


def _user(uid: int) -> str:
    try:
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"


def _group(gid: int) -> str:
    try:
        return f"{grp.getgrgid(gid).gr_name} (gid {gid})"
    except KeyError:
        return f"gid {gid}"
