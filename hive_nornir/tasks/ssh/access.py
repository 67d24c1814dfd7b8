"""Would sshd let OUR next login in? Read from `sshd -T -C` for our own login, and the lines to blame if not.

A reload activates every pending edit in every file sshd reads, not only ours (someone's `Port 2200` or
`AllowUsers nobody` in 00-local.conf), and a rollback of our own files cannot undo those. So before any reload,
the whole effective configuration as `sshd -T -C user=..,addr=..,laddr=..,lport=..` resolves it (Match blocks
included) must admit our user from our address on the address and port we arrive at. Pure: text in, reasons out.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

# the `sshd -T` keys that decide whether a login gets in at all
ACCESS_KEYS = ("port", "listenaddress", "allowusers", "denyusers", "allowgroups", "denygroups", "permitrootlogin",
               "pubkeyauthentication", "passwordauthentication", "authenticationmethods")
# which config keywords set each key (Port and ListenAddress decide together where sshd listens)
_BLAME = {"port": ("port", "listenaddress"), "listenaddress": ("port", "listenaddress")}


@dataclass(frozen=True)
class Login:
    """hive_nornir's own login as sshd will see it; conn fields empty when $SSH_CONNECTION was not found."""

    user: str
    groups: tuple[str, ...] = ()
    client_addr: str = ""
    server_addr: str = ""
    server_port: int | None = None
    key: bool = True  # authenticates with a key
    password: bool = False  # has a password to fall back to

    def describe(self) -> str:
        """`admin from 10.0.0.1 to 10.0.0.4:22` for messages."""
        where = f" from {self.client_addr} to {self.server_addr}:{self.server_port}" if self.server_port else ""
        return f"{self.user}{where}"


def _glob(pattern: str, text: str, fold: bool = False) -> bool:
    """sshd's match_pattern: `*` and `?` only (case-sensitive for users, folded for host names)."""
    rx = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(rx, text, re.IGNORECASE if fold else 0) is not None


def _host_matches(patterns: str, addr: str) -> bool:
    """The `@host` part of a user pattern: comma list of addresses, CIDRs or globs, `!` negates (UseDNS no)."""
    hit = False
    for raw in patterns.split(","):
        negated, pat = raw.startswith("!"), raw.lstrip("!")
        try:
            ok = "/" in pat and ipaddress.ip_address(addr) in ipaddress.ip_network(pat, strict=False)
        except ValueError:
            ok = False
        ok = ok or _glob(pat, addr, fold=True)
        if ok and negated:
            return False
        hit = hit or ok
    return hit


def user_matches(pattern: str, login: Login) -> bool:
    """AllowUsers/DenyUsers pattern `user` or `user@host` against our login."""
    user_pat, at, host_pat = pattern.partition("@")
    if not _glob(user_pat, login.user):
        return False
    return not at or _host_matches(host_pat, login.client_addr)


def _listens(effective: dict[str, list[str]], login: Login) -> bool | None:
    """Whether sshd listens where our login arrives (None: cannot tell)."""
    if login.server_port is None:
        return None
    entries = effective.get("listenaddress") or [f"0.0.0.0:{p}" for p in effective.get("port", [])]
    if not entries:
        return None
    try:
        ours = ipaddress.ip_address(login.server_addr)
    except ValueError:
        return None
    if isinstance(ours, ipaddress.IPv6Address) and ours.ipv4_mapped is not None:
        ours = ours.ipv4_mapped
    for entry in entries:
        host, _, port = entry.rpartition(":")
        host = host.strip("[]")
        if not port.isdigit() or int(port) != login.server_port:
            continue
        try:
            addr = ipaddress.ip_address(host)
        except ValueError:
            return None  # a host name: sshd resolved it, we cannot
        if addr == ours or (addr.is_unspecified and addr.version == ours.version):
            return True
    return False


def refusals(effective: dict[str, list[str]], login: Login, socket_activated: bool = False) -> list[tuple[str, str]]:
    """(sshd -T key, why) for each effective setting that would refuse our own next login; [] = admitted."""
    out: list[tuple[str, str]] = []
    eff = {k: [v for v in vs if v] for k, vs in effective.items()}
    if not socket_activated and _listens(eff, login) is False:
        where = ", ".join(eff.get("listenaddress") or eff.get("port", []))
        out.append(("port", f"sshd would listen on {where}, not on {login.server_addr}:{login.server_port} where "
                            "our login arrives"))
    denied = [p for p in eff.get("denyusers", []) if user_matches(p, login)]
    if denied:
        out.append(("denyusers", f"DenyUsers {denied[0]} matches {login.user}"))
    allowed = eff.get("allowusers", [])
    if allowed and not any(user_matches(p, login) for p in allowed):
        out.append(("allowusers", f"AllowUsers {' '.join(allowed)} does not match {login.describe()}"))
    bad_groups = [p for p in eff.get("denygroups", []) if any(_glob(p, g) for g in login.groups)]
    if bad_groups:
        out.append(("denygroups", f"DenyGroups {bad_groups[0]} matches a group of {login.user}"))
    groups_ok = eff.get("allowgroups", [])
    if groups_ok and not any(_glob(p, g) for p in groups_ok for g in login.groups):
        out.append(("allowgroups", f"AllowGroups {' '.join(groups_ok)} matches none of {login.user}'s groups "
                                   f"({' '.join(login.groups) or 'none known'})"))
    root = (eff.get("permitrootlogin") or [""])[0]
    if login.user == "root" and (root in ("no", "forced-commands-only") or
                                 (root in ("prohibit-password", "without-password") and not login.key)):
        out.append(("permitrootlogin", f"PermitRootLogin {root} refuses our root login"))
    can = {"publickey"} if login.key and (eff.get("pubkeyauthentication") or ["yes"])[0] != "no" else set()
    if login.password and (eff.get("passwordauthentication") or ["yes"])[0] != "no":
        can.add("password")
    if not can:
        out.append(("pubkeyauthentication" if login.key else "passwordauthentication",
                    "no authentication method we use is enabled"))
    methods = (eff.get("authenticationmethods") or ["any"])[0]
    if can and methods != "any" and not any(set(m.split(",")) <= can for m in methods.split()):
        out.append(("authenticationmethods", f"AuthenticationMethods {methods} needs a method we cannot do "
                                             f"(we use {', '.join(sorted(can))})"))
    return out


Entry = tuple[str, int, str]  # (file, line number, line text) in the order sshd reads them


def setter_lines(order: list[Entry], keys: set[str]) -> list[str]:
    """`file:line: text` of every line setting one of keys, in the order sshd reads them (Match blocks noted)."""
    found = []
    match: dict[str, str] = {}  # a Match block lasts to the end of its file
    for path, number, raw in order:
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        keyword = re.split(r"[\s=]+", line, maxsplit=1)[0].lower()
        if keyword == "match":
            match[path] = line
        elif keyword in keys:
            inside = match.get(path, "")
            found.append(f"{path}:{number}: {line}" + (f" (inside `{inside}`)" if inside else ""))
    return found


def blame(order: list[Entry], key: str) -> str:
    """The lines that set what refuses us, or a note that only a default does."""
    lines = setter_lines(order, set(_BLAME.get(key, (key,))))
    return "; ".join(lines) if lines else "no line sets it in the files sshd reads (a default)"
