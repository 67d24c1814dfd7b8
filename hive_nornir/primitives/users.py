"""Users, groups and authorized keys: read with getent/id, changed with the shadow tools."""

from __future__ import annotations

import base64
import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hive_nornir.facts import Facts
from hive_nornir.primitives.base import Plan, Primitive, Upload
from hive_nornir.primitives.probes import argv, parse_kv, parse_stat, q, stat_command
from hive_nornir.primitives.resources import ACCOUNTS, made_with_parents, path

STATES = ("present", "absent")
GROUPS_MARK = "--groups--"  # raw `getent group` lines follow it
_NAME = re.compile(r"^[a-z_][a-z0-9_.-]*\$?$", re.IGNORECASE)


def _check_name(what: str, name: str) -> None:
    """Names go to useradd/groupadd argv: refuse anything the shadow tools would not accept anyway."""
    if not _NAME.match(name) or len(name) > 32:
        raise ValueError(f"invalid {what} name {name!r}")


def _check_state(state: str) -> None:
    """A typo in state must not silently mean present."""
    if state not in STATES:
        raise ValueError(f"state must be one of {', '.join(STATES)}, not {state!r}")


def home_of(user: str) -> str:
    """Where useradd puts a home by default (HOME of /etc/default/useradd is not read): what User creates and
    AuthorizedKeys reads when no home is given."""
    return "/root" if user == "root" else f"/home/{user}"


def _group_entries(output: str) -> dict[str, str]:
    """Group name -> gid from the raw `getent group` lines after GROUPS_MARK."""
    _, mark, section = output.partition(GROUPS_MARK)
    entries: dict[str, str] = {}
    for line in section.splitlines() if mark else []:
        fields = line.split(":")
        if len(fields) == 4:
            entries[fields[0]] = fields[2]
    return entries


@dataclass(eq=False)
class Group(Primitive):
    """Ensure a group exists (with this gid) or does not."""

    name: str
    gid: int | None = None
    system: bool = False
    state: str = "present"
    kind = "group"

    def __post_init__(self) -> None:
        """Bad names fail before any host is touched."""
        _check_name("group", self.name)
        _check_state(self.state)

    @property
    def ident(self) -> str:
        """Reports name the group."""
        return f"group[{self.name}]"

    def probe(self, facts: Facts) -> str:
        """The group database entry, empty when there is none."""
        return f"echo \"group=$({argv('getent', 'group', self.name)})\""

    def reads(self) -> frozenset[str]:
        """The account databases."""
        return frozenset({ACCOUNTS})

    def writes(self) -> frozenset[str]:
        """The account databases."""
        return frozenset({ACCOUNTS})

    def plan(self, facts: Facts, probe_output: str) -> Plan:
        """groupadd, groupmod -g or groupdel, only when the entry differs."""
        entry = parse_kv(probe_output).get("group", "")
        fields = entry.split(":")
        exists = len(fields) >= 3 and fields[0] == self.name
        if self.state == "absent":
            if not exists:
                return Plan()
            return Plan(changed=True, summary=f"remove group {self.name}", diff=f"- group {self.name}\n",
                        commands=[argv("groupdel", self.name)])
        if not exists:
            opts = (["-r"] if self.system else []) + (["-g", str(int(self.gid))] if self.gid is not None else [])
            gid = f" (gid {self.gid})" if self.gid is not None else ""
            return Plan(changed=True, summary=f"create group {self.name}{gid}",
                        diff=f"+ group {self.name}{gid}\n", commands=[argv("groupadd", *opts, self.name)])
        if self.gid is not None and fields[2] != str(self.gid):
            return Plan(changed=True, summary=f"group {self.name}: gid {fields[2]} -> {self.gid}",
                        diff=f"- gid {fields[2]}\n+ gid {self.gid}\n",
                        commands=[argv("groupmod", "-g", int(self.gid), self.name)])
        return Plan()


@dataclass(eq=False)
class User(Primitive):
    """Ensure a login account exists with these ids, groups, shell and home (or does not exist)."""

    name: str
    uid: int | None = None
    group: str | None = None  # primary group; None: useradd's own default (a group named like the user)
    groups: Sequence[str] = ()  # supplementary groups, added to whatever the user already has
    shell: str | None = "/bin/bash"
    home: str | None = None
    system: bool = False
    exclusive_groups: bool = False  # True: remove supplementary groups not listed
    state: str = "present"
    remove_home: bool = False  # with state="absent": userdel -r
    kind = "user"

    def __post_init__(self) -> None:
        """Bad names fail before any host is touched."""
        _check_name("user", self.name)
        _check_state(self.state)
        self.groups = tuple(dict.fromkeys(self.groups))
        for g in (self.group, *self.groups):
            if g is not None:
                _check_name("group", g)

    @property
    def ident(self) -> str:
        """Reports name the account."""
        return f"user[{self.name}]"

    def probe(self, facts: Facts) -> str:
        """passwd entry, current group names, and the entries of the groups we want (one getent)."""
        lines = [f"echo \"passwd=$({argv('getent', 'passwd', self.name)})\""]
        if self.state == "present":
            lines.append(f"echo \"ids=$({argv('id', '-Gn', self.name)} 2>/dev/null)\"")
            wanted = [g for g in (self.group, *self.groups) if g]
            if wanted:
                lines.append(f"echo {GROUPS_MARK}; {argv('getent', 'group', *dict.fromkeys(wanted))}")
        return "\n".join(lines)

    def reads(self) -> frozenset[str]:
        """The account databases."""
        return frozenset({ACCOUNTS})

    def writes(self) -> frozenset[str]:
        """The account databases and the home useradd -m makes (userdel -r removes)."""
        return frozenset({ACCOUNTS, *made_with_parents(self.home or home_of(self.name))})

    def plan(self, facts: Facts, probe_output: str) -> Plan:
        """useradd for a new account, one usermod with only the differing options for an existing one."""
        kv = parse_kv(probe_output.partition(GROUPS_MARK)[0])
        fields = kv.get("passwd", "").split(":")
        exists = len(fields) >= 7 and fields[0] == self.name
        if self.state == "absent":
            if not exists:
                return Plan()
            return Plan(changed=True, summary=f"remove user {self.name}", diff=f"- user {self.name}\n",
                        commands=[argv("userdel", *(["-r"] if self.remove_home else []), self.name)])
        known = _group_entries(probe_output)
        create_own_group = not exists and self.group == self.name and self.name not in known
        absent = [g for g in dict.fromkeys(g for g in (self.group, *self.groups) if g)
                  if g not in known and not (create_own_group and g == self.name)]
        if absent:
            return Plan(missing=f"group {', '.join(absent)} does not exist (user {self.name})")
        if not exists:
            return self._create(create_own_group)
        return self._update(fields, kv.get("ids", "").split(), known)

    def _create(self, own_group: bool) -> Plan:
        """useradd -m with every option we know; the home directory comes from the skeleton."""
        opts: list[str] = ["-m"]
        if self.system:
            opts.append("-r")
        if self.uid is not None:
            opts += ["-u", str(int(self.uid))]
        if own_group:
            opts.append("-U")
        elif self.group:
            opts += ["-g", self.group]
        if self.groups:
            opts += ["-G", ",".join(self.groups)]
        if self.shell:
            opts += ["-s", self.shell]
        if self.home:
            opts += ["-d", self.home]
        details = [f"{k} {v}" for k, v in (("uid", self.uid), ("group", self.group),
                                           ("groups", ",".join(self.groups)), ("shell", self.shell),
                                           ("home", self.home)) if v not in (None, "")]
        return Plan(changed=True, summary=f"create user {self.name}",
                    diff=f"+ user {self.name}" + (f" ({', '.join(details)})" if details else "") + "\n",
                    commands=[argv("useradd", *opts, self.name)])

    def _update(self, fields: list[str], ids: list[str], known: dict[str, str]) -> Plan:
        """Compare each attribute; additive supplementary groups unless exclusive_groups."""
        _, _, uid, gid, _, home, shell = fields[:7]
        opts: list[str] = []
        diff: list[str] = []
        if self.uid is not None and uid != str(self.uid):
            opts += ["-u", str(int(self.uid))]
            diff.append(f"uid {uid} -> {self.uid}")
        if self.group and known.get(self.group) != gid:
            opts += ["-g", self.group]
            diff.append(f"group {ids[0] if ids else gid} -> {self.group}")
        primary = self.group or (ids[0] if ids else "")
        current = [g for g in ids[1:] if g != primary]
        if self.exclusive_groups:
            want = [g for g in self.groups if g != primary]
            if set(current) != set(want):
                opts += ["-G", ",".join(want)]
                diff.append(f"groups {','.join(current) or '(none)'} -> {','.join(want) or '(none)'}")
        else:
            add = [g for g in self.groups if g not in current and g != primary]
            if add:
                opts += ["-a", "-G", ",".join(add)]
                diff.append("groups +" + ",+".join(add))
        if self.shell and shell != self.shell:
            opts += ["-s", self.shell]
            diff.append(f"shell {shell} -> {self.shell}")
        if self.home and home != self.home:
            opts += ["-d", self.home]
            diff.append(f"home {home} -> {self.home} (contents not moved)")
        if not opts:
            return Plan()
        return Plan(changed=True, summary=f"user {self.name}: " + ", ".join(diff),
                    diff="".join(f"~ {d}\n" for d in diff),
                    commands=[argv("usermod", *opts, self.name)])


AUTH_PROBE = r"""set -f
pw=$(getent passwd {user})
if [ -z "$pw" ]; then echo user=no; else
IFS=:; set -- $pw; unset IFS; h=$6
echo "home=$h"; echo "group=$(id -gn {user})"
if [ -d "$h" ]; then echo homedir=yes; fi
if [ -d "$h/.ssh" ]; then {stat_sshdir}; fi
if [ -f "$h/.ssh/authorized_keys" ]; then {stat_keys}
printf 'content='; base64 -w0 < "$h/.ssh/authorized_keys"; echo; fi
fi"""


@dataclass(eq=False)
class AuthorizedKeys(Primitive):
    """Ensure a user's ~/.ssh/authorized_keys holds these public keys (only these, when exclusive).

    Non-exclusive by default, like hive-builder's authorized_key. `keep`: keys (e.g. the one hive_nornir logs in
    with) that an exclusive plan must never drop; it is refused instead.
    """

    user: str
    keys: Sequence[str]
    exclusive: bool = False
    keep: Sequence[str] = ()
    kind = "authorized_keys"

    def __post_init__(self) -> None:
        """One key per line: a newline inside a key would smuggle in another one."""
        _check_name("user", self.user)
        if isinstance(self.keys, str):
            self.keys = [self.keys]
        self.keys = tuple(dict.fromkeys(k.strip() for k in self.keys if k.strip()))
        if any("\n" in k or "\r" in k for k in self.keys):
            raise ValueError(f"authorized key for {self.user} contains a line break")
        self.keep = tuple(self.keep)

    @property
    def ident(self) -> str:
        """Reports name the account whose keys these are."""
        return f"authorized_keys[{self.user}]"

    def probe(self, facts: Facts) -> str:
        """Home from passwd (it need not be /home/USER), then ~/.ssh and the current keys file."""
        return (AUTH_PROBE.replace("{user}", q(self.user))
                .replace("{stat_sshdir}", stat_command("sshdir", '"$h/.ssh"'))
                .replace("{stat_keys}", stat_command("keys", '"$h/.ssh/authorized_keys"')))

    def reads(self) -> frozenset[str]:
        """The account (its home comes from passwd) and the default home of the user (home_of: a home elsewhere
        is not known before the probe)."""
        return frozenset({ACCOUNTS, path(home_of(self.user))})

    def writes(self) -> frozenset[str]:
        """~/.ssh under the default home (and the candidate staged beside it)."""
        return frozenset({path(home_of(self.user))})

    def plan(self, facts: Facts, probe_output: str) -> Plan:
        """Upload the whole file when the keys differ; fix ~/.ssh and file modes/owners with chmod/chown."""
        kv = parse_kv(probe_output)
        if kv.get("user") == "no" or "home" not in kv:
            return Plan(missing=f"user {self.user} does not exist")
        home, group = kv["home"], kv.get("group") or self.user
        if kv.get("homedir") != "yes":
            return Plan(missing=f"home directory {home} of user {self.user} does not exist")
        sshdir, path = f"{home}/.ssh", f"{home}/.ssh/authorized_keys"
        current = base64.b64decode(kv.get("content", "")).decode(errors="replace") if "keys" in kv else None
        old_lines = (current or "").splitlines()
        new_lines = list(self.keys) if self.exclusive else \
            old_lines + [k for k in self.keys if k not in {line.strip() for line in old_lines}]
        if self.exclusive:
            kept = {key_id(k) for k in new_lines} - {None}
            dropped = [ln for ln in old_lines if key_id(ln) in {key_id(k) for k in self.keep} - {None} - kept]
            if dropped:
                return Plan(error=f"refusing: exclusive authorized_keys for {self.user} would drop the key "
                                  f"hive_nornir logs in with ({dropped[0].strip()[:60]}...); list it in the "
                                  f"user's keys or drop `exclusive`")
        desired = "".join(line + "\n" for line in new_lines)
        owner = f"{self.user}:{group}"
        commands: list[str] = []
        uploads: list[Upload] = []
        notes: list[str] = []
        if "sshdir" not in kv:
            # uploads land before commands run, so stage next to ~/.ssh and move it in after mkdir
            staged = f"{home}/.hive-authorized_keys"
            uploads.append(Upload(staged, desired.encode(), "0600", self.user, group, backup=False))
            commands += [argv("install", "-d", "-m", "700", "-o", self.user, "-g", group, sshdir),
                         argv("mv", "-f", staged, path)]
            notes.append(f"create {sshdir}")
        else:
            commands += self._fix(sshdir, kv["sshdir"], "700", owner, self.user, group, notes)
            if current != desired:
                uploads.append(Upload(path, desired.encode(), "0600", self.user, group, backup=False))
            else:
                commands += self._fix(path, kv["keys"], "600", owner, self.user, group, notes)
        if current != desired:
            notes.insert(0, f"{'create' if current is None else 'update'} {path}")
        if not commands and not uploads:
            return Plan()
        before, after = [f"{line}\n" for line in old_lines], [f"{k}\n" for k in new_lines]
        diff = "".join(difflib.unified_diff(before, after, f"{path} (current)", f"{path} (desired)"))
        diff = diff or "\n".join(notes) + "\n"
        return Plan(changed=True, summary=f"authorized_keys of {self.user}: " + ", ".join(notes),
                    diff=diff, commands=commands, uploads=uploads)

    @staticmethod
    def _fix(path: str, stat: str, mode: str, owner: str, user: str, group: str,
             notes: list[str]) -> list[str]:
        """chmod/chown when the shared stat probe's value differs from what sshd's StrictModes wants."""
        have = parse_stat(stat)
        have_mode, have_user, have_group = (have.mode, have.user, have.group) if have else ("?", "?", "?")
        out = []
        if have_mode != mode:
            out.append(argv("chmod", mode, path))
            notes.append(f"{path} mode {have_mode} -> {mode}")
        if (have_user, have_group) != (user, group):
            out.append(argv("chown", owner, path))
            notes.append(f"{path} owner {have_user}:{have_group} -> {user}:{group}")
        return out


def key_id(line: str) -> str | None:
    """`type base64` of an authorized_keys line (options and comment ignored), or None for no key."""
    tokens = line.strip().split()
    for i, token in enumerate(tokens[:-1]):
        if token.startswith(("ssh-", "ecdsa-", "sk-")):
            return f"{token} {tokens[i + 1]}"
    return None


def user_with_keys(name: str, authorized_keys: Sequence[str] = (), exclusive_keys: bool = False,
                   keep_keys: Sequence[str] = (), **user: Any) -> list[Primitive]:
    """A User, then its AuthorizedKeys (re-probed after the account exists); no keys given: keys untouched.

    Keys are added to what the file holds (hive-builder's authorized_key); exclusive_keys replaces the file but
    never drops keep_keys (the login's own key).
    """
    items: list[Primitive] = [User(name=name, **user)]
    if authorized_keys and user.get("state", "present") == "present":
        items.append(AuthorizedKeys(user=name, keys=tuple(authorized_keys), exclusive=exclusive_keys,
                                    keep=tuple(keep_keys)))
    return items
