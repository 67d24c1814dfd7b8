"""Pure sshd hardening planning: wanted settings, drop-in text, lock-out pre-flight, effective-value checks.

Everything here is facts and text in, decisions out, so both OS families are unit-tested without a host.
sshd_config(5): "for each keyword, the first obtained value will be used", so the drop-in is only trusted
once `sshd -T` (which evaluates Include order and Match blocks) reports the wanted values.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field

from hive_nornir.facts import Facts
from hive_nornir.primitives.base import q
from hive_nornir.primitives.lines import text_diff
from hive_nornir.tasks.ssh.access import ACCESS_KEYS, Entry, Login, blame, refusals
from hive_nornir.tasks.ssh.reach import port_refusal

SSHD = "/usr/sbin/sshd"
MAIN_CONFIG = "/etc/ssh/sshd_config"
DROPIN_DIR = "/etc/ssh/sshd_config.d"
DROPIN = f"{DROPIN_DIR}/10-hive.conf"  # sorts before 50-cloud-init.conf, which often sets PasswordAuthentication
INCLUDE_LINE = f"Include {DROPIN_DIR}/*.conf"
HEADER = "# managed by hive_nornir (sshd step); a fresh login was proven before this file was kept\n"
REGRESSHION = ((8, 5, 1), (9, 8, 1))  # CVE-2024-6387 range hive-builder mitigates with LoginGraceTime 0
KBD_ONLY = (8, 7)  # from 8.7 ChallengeResponseAuthentication is only an alias of KbdInteractiveAuthentication

_VERSION = re.compile(r"^(\d+)\.(\d+)(?:p(\d+))?")
_USER = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_INCLUDE = re.compile(r"^\s*include\s+(?:\S*/)?sshd_config\.d/\*(?:\.conf)?\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Setting:
    """One sshd keyword and value; `check` says whether `sshd -T` must report it (aliases are not printed)."""

    keyword: str
    value: str
    check: bool = True

    @property
    def key(self) -> str:
        """How `sshd -T` names the keyword: lower case."""
        return self.keyword.lower()


@dataclass(frozen=True)
class Connection:
    """Our own SSH connection as sshd sees it ($SSH_CONNECTION), which can differ from what the controller dials."""

    client_addr: str
    client_port: int
    server_addr: str
    server_port: int


def openssh_version(text: str) -> tuple[int, int, int] | None:
    """`9.2p1` -> (9, 2, 1); a release without `pN` (some builds print `OpenSSH_9.2`) counts as p1."""
    m = _VERSION.match(text.strip())
    if not m:
        return None
    return int(m.group(1)), int(m.group(2)), int(m.group(3) or 1)


def regresshion_exposed(text: str) -> bool:
    """OpenSSH 8.5p1 to 9.8p1 (hive-builder's range): LoginGraceTime 0 closes the signal-handler race."""
    version = openssh_version(text)
    return version is not None and REGRESSHION[0] <= version <= REGRESSHION[1]


def wanted_settings(facts: Facts, users_managed: bool, port: int | None, gateway_ports: bool = False) -> list[Setting]:
    """hive-builder's base (§3.4 steps 3 and 14), users (§3.11) and strict-source-ip (§3.12) sshd lines, in one place.

    gateway_ports: the controller's proxy is forwarded to the host's private address (transport/forward.py);
    `clientspecified` lets sshd bind exactly that address (hive-builder's `yes` binds every address)."""
    version = openssh_version(facts.openssh)
    items = [Setting("PasswordAuthentication", "no"), Setting("KbdInteractiveAuthentication", "no")]
    if version is None or version[:2] < KBD_ONLY:
        # old hosts: a separate keyword; unknown version: write it too, but only check what every sshd prints
        items.append(Setting("ChallengeResponseAuthentication", "no", check=version is not None))
    items.append(Setting("UseDNS", "no"))
    if regresshion_exposed(facts.openssh):
        items.append(Setting("LoginGraceTime", "0"))
    if users_managed:
        items.append(Setting("PermitRootLogin", "no"))
    if port is not None:
        items.append(Setting("Port", str(port)))
    if gateway_ports:
        items.append(Setting("GatewayPorts", "clientspecified"))
    return items


def dropin_text(settings: list[Setting]) -> str:
    """The drop-in: a header and one `Keyword value` line per setting, no Match blocks."""
    return HEADER + "".join(f"{s.keyword} {s.value}\n" for s in settings)


def has_include(main_text: str) -> bool:
    """Whether the main file includes sshd_config.d (Debian 12 and EL9 do; EL8 does not)."""
    return any(_INCLUDE.match(line) for line in main_text.splitlines())


def with_include(main_text: str) -> str:
    """The main file with the Include at the very top, so drop-ins come first and win (first value wins)."""
    if has_include(main_text):
        return main_text
    return f"# added by hive_nornir: drop-ins must be read first\n{INCLUDE_LINE}\n\n{main_text}"


def parse_connection(text: str) -> Connection | None:
    """`client_addr client_port server_addr server_port` from $SSH_CONNECTION; None when unknown."""
    parts = text.split()
    if len(parts) != 4 or not parts[1].isdigit() or not parts[3].isdigit():
        return None
    return Connection(parts[0], int(parts[1]), parts[2], int(parts[3]))


def match_spec(user: str, conn: Connection | None) -> str:
    """`sshd -T -C` connection spec for our own login, so Match blocks are evaluated the way they will apply."""
    spec = f"user={user}"
    if conn is not None:
        spec += f",host={conn.client_addr},addr={conn.client_addr},laddr={conn.server_addr},lport={conn.server_port}"
    return spec


def lockout_reasons(settings: list[Setting], login_user: str, conn: Connection | None,
                    password_only: bool) -> list[str]:
    """Why these settings would lock out the login hive_nornir itself uses (empty: safe to try)."""
    wanted = {s.key: s.value for s in settings}
    reasons = []
    if wanted.get("permitrootlogin") == "no" and login_user == "root":
        reasons.append("hive_nornir logs in as root and PermitRootLogin no would apply (hive_users is set): "
                       "log in as the admin user (hive_admin) instead")
    if wanted.get("passwordauthentication") == "no" and password_only:
        reasons.append(f"hive_nornir logs in as {login_user} with a password and no key, "
                       "and PasswordAuthentication no would apply: give it a key first")
    port = wanted.get("port")
    why = port_refusal(None if port is None else int(port), conn.server_port if conn else None)
    if why:
        reasons.append(why)
    return reasons


def parse_effective(text: str) -> dict[str, list[str]]:
    """`sshd -T` lines (`key value`) into key -> values; `port` can repeat, sshd listens on each."""
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        key, _, value = line.strip().partition(" ")
        if key:
            out.setdefault(key.lower(), []).append(value.strip())
    return out


def mismatches(settings: list[Setting], effective: dict[str, list[str]]) -> list[str]:
    """Each wanted value sshd will not use, as `key: wanted X, sshd uses Y` (empty: all effective)."""
    wrong = []
    for s in settings:
        if not s.check:
            continue
        got = effective.get(s.key, [])
        ok = s.value in got if s.key == "port" else got == [s.value]
        if not ok:
            wrong.append(f"{s.keyword}: wanted {s.value}, sshd uses {' '.join(got) or '(nothing)'}")
    return wrong


def effective_grep(settings: list[Setting]) -> str:
    """An ERE for the `sshd -T` lines we compare and those that decide whether we get in at all (short output)."""
    keys = sorted({s.key for s in settings} | set(ACCESS_KEYS))
    return "^(" + "|".join(keys) + ") "


def effective_command(settings: list[Setting], user: str, spec_var: str = "") -> str:
    """`sshd -T -C <spec>` filtered to our keys; spec_var lets a probe build the spec in shell."""
    spec = spec_var or q(match_spec(user, None))
    return f"{SSHD} -T -C {spec} 2>&1 | grep -Ei {q(effective_grep(settings))}"


def setters_command(settings: list[Setting]) -> str:
    """grep for every file line that sets one of our keywords: names the file that overrides the drop-in."""
    words = "|".join(sorted({s.keyword for s in settings}))
    return (f"grep -HniE {q(r'^[[:space:]]*(' + words + r')[[:space:]]')} {MAIN_CONFIG} "
            f"{DROPIN_DIR}/*.conf 2>/dev/null | grep -v {q('^' + DROPIN + ':')} || true")


def service_name(facts: Facts) -> str:
    """The unit is `ssh` on Debian and Ubuntu, `sshd` on EL."""
    return "ssh" if facts.is_debian else "sshd"


# Walk up from this shell to the first ancestor that has SSH_CONNECTION: sudo resets the environment, but
# the login shell it was started from still holds it (root logins find it in the first process).
_CONNECTION_WALK = r"""p=$$; c=""
while [ -n "$p" ] && [ "$p" -gt 1 ]; do
  c=$(tr '\0' '\n' < /proc/$p/environ 2>/dev/null | sed -n 's/^SSH_CONNECTION=//p')
  [ -n "$c" ] && break
  p=$(sed -n 's/^PPid:[[:space:]]*//p' /proc/$p/status 2>/dev/null)
done
echo "conn=$c"
"""


def probe_script(settings: list[Setting], user: str) -> str:
    """Read-only, one exec: main file, drop-in, our connection as sshd sees it, and sshd's effective values."""
    if not _USER.match(user):
        raise ValueError(f"login user {user!r} is not a plain user name")
    m, d = q(MAIN_CONFIG), q(DROPIN)
    return (
        f"if [ -f {m} ]; then stat -c 'mainstat=%a %U %G' {m}; printf 'main='; base64 -w0 < {m}; echo; "
        f"else echo main=missing; fi\n"
        f"if [ -f {d} ]; then printf 'dropin='; base64 -w0 < {d}; echo; fi\n"
        f"if [ -d {q(DROPIN_DIR)} ]; then echo dir=yes; fi\n"
        f"for f in {q(DROPIN_DIR)}/*.conf; do if [ -f \"$f\" ] && [ \"$f\" != {d} ]; then "
        f"printf 'conf=%s\\t' \"$f\"; base64 -w0 < \"$f\"; echo; fi; done\n"
        + _CONNECTION_WALK
        + "set -- $c\n"
        + f"if [ $# -eq 4 ]; then spec=\"user={user},host=$1,addr=$1,laddr=$3,lport=$4\"; "
        + f"else spec=\"user={user}\"; fi\n"
        + f"out=$({SSHD} -T -C \"$spec\" 2>&1); echo \"trc=$?\"\n"
        + f"printf '%s\\n' \"$out\" | grep -Ei {q(effective_grep(settings))} | sed 's/^/eff=/'\n"
        + "printf '%s\\n' \"$out\" | grep -vEi '^[a-z0-9]+ ' | tail -n 3 | sed 's/^/terr=/'\n"
        + f"echo \"groups=$(id -Gn {user} 2>/dev/null)\"\n"
        + "for u in ssh.socket sshd.socket; do systemctl is-active --quiet $u 2>/dev/null && echo socket=yes; done\n"
        + "true\n"
    )


@dataclass(frozen=True)
class HostState:
    """What the probe found: file texts (None: absent), our connection, and what sshd -T reports."""

    main: str | None
    main_stat: tuple[str, str, str]
    dropin: str | None
    dir_exists: bool
    conn: Connection | None
    t_ok: bool
    effective: dict[str, list[str]] = field(default_factory=dict)
    t_error: str = ""
    others: dict[str, str] = field(default_factory=dict)  # the other drop-ins: path -> text
    groups: tuple[str, ...] = ()  # the login user's groups (AllowGroups/DenyGroups)
    socket: bool = False  # socket activation: systemd, not sshd's Port/ListenAddress, owns the listener


def parse_probe(output: str) -> HostState:
    """probe_script output -> HostState; base64 keeps arbitrary config bytes intact."""
    kv: dict[str, str] = {}
    eff: list[str] = []
    err: list[str] = []
    others: dict[str, str] = {}
    for line in output.splitlines():
        key, sep, value = line.partition("=")
        if not sep:
            continue
        if key == "conf":
            path, _, data = value.partition("\t")
            others[path] = _b64(data)
        elif key == "eff":
            eff.append(value)
        elif key == "terr":
            err.append(value)
        else:
            kv[key] = value
    main = kv.get("main")
    stat = ([*kv.get("mainstat", "644 root root").split(), "root", "root"])[:3]
    return HostState(
        main=None if main in (None, "missing") else _b64(main or ""),
        main_stat=(stat[0].zfill(4), stat[1], stat[2]),
        dropin=_b64(kv["dropin"]) if "dropin" in kv else None,
        dir_exists=kv.get("dir") == "yes",
        conn=parse_connection(kv.get("conn", "")),
        t_ok=kv.get("trc") == "0",
        effective=parse_effective("\n".join(eff)),
        t_error="\n".join(err),
        others=others,
        groups=tuple(kv.get("groups", "").split()),
        socket=kv.get("socket") == "yes",
    )


def _b64(text: str) -> str:
    """Decode probe base64 to text, keeping undecodable bytes round-trippable."""
    return base64.b64decode(text).decode("utf-8", "surrogateescape")


@dataclass(frozen=True)
class HardeningPlan:
    """New file texts (None: leave the file alone) and the report lines (ident, summary, diff) for each."""

    main_new: str | None
    dropin_new: str | None
    changes: tuple[tuple[str, str, str], ...]


def plan_changes(state: HostState, settings: list[Setting]) -> HardeningPlan:
    """Compare the host's files with the wanted ones; nothing to do means no report line at all."""
    if state.main is None:
        raise ValueError(f"{MAIN_CONFIG} does not exist: is openssh-server installed?")
    changes: list[tuple[str, str, str]] = []
    main_new = None
    if not has_include(state.main):
        main_new = with_include(state.main)
        changes.append((f"line[{MAIN_CONFIG}:Include]", f"add `{INCLUDE_LINE}` at the top of {MAIN_CONFIG}",
                        text_diff(MAIN_CONFIG, state.main, main_new)))
    want = dropin_text(settings)
    dropin_new = None
    if state.dropin != want:
        dropin_new = want
        verb = "create" if state.dropin is None else "update"
        changes.append((f"file[{DROPIN}]", f"{verb} {DROPIN}", text_diff(DROPIN, state.dropin, want)))
    return HardeningPlan(main_new, dropin_new, tuple(changes))


def _directives(text: str) -> list[tuple[int, str, str, bool]]:
    """(line number, keyword lower-cased, first value, inside a Match block) of every directive in one file."""
    out = []
    in_match = False
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = re.split(r"[\s=]+", line, maxsplit=2)
        keyword = parts[0].lower()
        if keyword == "match":
            in_match = True
            continue
        out.append((number, keyword, parts[1] if len(parts) > 1 else "", in_match))
    return out


def first_values(main_text: str, dropins: dict[str, str]) -> dict[str, tuple[str, str]]:
    """keyword -> (value, `file:line`) that sshd reads FIRST outside Match blocks, the Include expanded in order.

    A main file without the Include gets it at the top (what the step writes); a Match block ends with its file.
    """
    main = main_text if has_include(main_text) else with_include(main_text)
    order: list[tuple[str, str, str]] = []
    for number, keyword, value, in_match in _directives(main):
        if in_match:
            continue
        if keyword == "include" and _INCLUDE.match(f"Include {value}"):
            for path, text in sorted(dropins.items()):
                order += [(kw, val, f"{path}:{n}") for n, kw, val, inside in _directives(text) if not inside]
            continue
        order.append((keyword, value, f"{MAIN_CONFIG}:{number}"))
    first: dict[str, tuple[str, str]] = {}
    for keyword, value, where in order:
        first.setdefault(keyword, (value, where))
    return first


def predicted_overrides(state: HostState, settings: list[Setting]) -> list[str]:
    """Wanted values an earlier file would beat once our drop-in is in place (check mode's prediction)."""
    if state.main is None:
        return []
    dropins = dict(state.others)
    dropins[DROPIN] = dropin_text(settings)
    first = first_values(state.main, dropins)
    found = []
    for s in settings:
        if s.key == "port":  # Port accumulates: every Port line adds a listener
            continue
        value, where = first.get(s.key, (s.value, DROPIN))
        if not where.startswith(DROPIN + ":") and value.lower() != s.value.lower():
            found.append(f"{where}: {s.keyword} {value} comes first (wanted {s.value})")
    return found


def read_order(main_text: str, dropins: dict[str, str]) -> list[Entry]:
    """Every line sshd reads, in its order: the main file with the drop-ins (sorted) where the Include stands."""
    entries: list[Entry] = []
    for number, raw in enumerate(main_text.splitlines(), 1):
        if _INCLUDE.match(raw):
            for path, text in sorted(dropins.items()):
                entries += [(path, n, line) for n, line in enumerate(text.splitlines(), 1)]
        else:
            entries.append((MAIN_CONFIG, number, raw))
    return entries


def own_login(user: str, state: HostState, password_only: bool) -> Login:
    """Our next login as sshd will see it: user, groups, and the addresses and port of this session."""
    conn = state.conn
    return Login(user=user, groups=state.groups, client_addr=conn.client_addr if conn else "",
                 server_addr=conn.server_addr if conn else "", server_port=conn.server_port if conn else None,
                 key=not password_only, password=password_only)


def access_problems(effective: dict[str, list[str]], login: Login, socket: bool, order: list[Entry],
                    skip: frozenset[str] = frozenset()) -> list[str]:
    """Each reason sshd would refuse our login with this effective config, with the lines that set it."""
    return [f"{why} (set by {blame(order, key)})" for key, why in refusals(effective, login, socket)
            if key not in skip]


def current_order(state: HostState) -> list[Entry]:
    """What sshd reads now: the main file and every drop-in, ours included."""
    dropins = dict(state.others)
    if state.dropin is not None:
        dropins[DROPIN] = state.dropin
    return read_order(state.main or "", dropins)


def planned_order(state: HostState, plan: HardeningPlan) -> list[Entry]:
    """What sshd reads once this plan's files are in place."""
    dropins = dict(state.others)
    dropin = plan.dropin_new if plan.dropin_new is not None else state.dropin
    if dropin is not None:
        dropins[DROPIN] = dropin
    main = plan.main_new if plan.main_new is not None else state.main or ""
    return read_order(main, dropins)


def reload_script(service: str, port: int, polls: int = 100) -> str:
    """`systemctl reload`, then wait until sshd listens on NEW sockets: only then is the new config serving.

    sshd handles SIGHUP by closing its listeners and re-executing itself, after `systemctl reload` has returned;
    a login in between is served by the OLD config and would prove nothing. Under socket activation
    (ssh.socket) systemd owns the listener, so there is nothing to watch: wait a second instead.
    """
    return f"""ino() {{ ss -Hltne "sport = :{port}" 2>/dev/null | grep -o 'ino:[0-9]*' | sort | tr '\\n' ' '; }}
before=$(ino)
systemctl reload {q(service)} || exit $?
if [ -z "$before" ] || systemctl is-active --quiet {q(service + '.socket')} 2>/dev/null; then sleep 1; exit 0; fi
i=0
while [ $i -lt {polls} ]; do
  now=$(ino); fresh=yes
  [ -n "$now" ] || fresh=no
  for x in $before; do case " $now " in *" $x "*) fresh=no;; esac; done
  [ $fresh = yes ] && exit 0
  sleep 0.1; i=$((i+1))
done
echo "sshd still listens on its old sockets on port {port} {polls // 10} s after the reload" >&2
exit 3"""
