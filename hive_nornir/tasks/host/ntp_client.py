"""ntp-client: chrony synchronised only from hive_ntp_servers; the distribution's pool lines are commented out
(EL's `server N.centos.pool.ntp.org` and AlmaLinux/Debian `pool` lines alike: hive-builder missed the latter)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from hive_nornir.engine.errors import StepFailed
from hive_nornir.engine.protocols import TaskContext
from hive_nornir.facts import Facts
from hive_nornir.primitives.base import Primitive
from hive_nornir.primitives.file import File
from hive_nornir.primitives.filesystem import Directory
from hive_nornir.primitives.lines import BlockInFile, LineInFile, _TextEdit
from hive_nornir.primitives.packages import Packages
from hive_nornir.primitives.service import Service, restart_handler

DEBIAN_CONF = "/etc/chrony/chrony.conf"
DEBIAN_SOURCES_DIR = "/etc/chrony/sources.d"
DEBIAN_SOURCES = f"{DEBIAN_SOURCES_DIR}/hive.sources"
EL_CONF = "/etc/chrony.conf"
BLOCK_MARKER = "# {mark} HIVE MANAGED BLOCK ntp servers"
# default time sources shipped by the distributions: `pool <name>` and `server <n>.<vendor>.pool.ntp.org`
DEFAULT_SOURCE = r"^\s*(pool\s+\S+|server\s+\d+\.[\w.-]*pool\.ntp\.org)(\s|$)"
_SERVER = re.compile(r"^[A-Za-z0-9.:_-]+$")

# Debian 12's /usr/share/chrony/chrony.conf (chrony 4.3) with its pool commented out: written before the package
# is installed, so the first start of chronyd never reaches the public pool (dpkg/ucf keep an existing file).
DEBIAN_STOCK = """\
# Welcome to the chrony configuration file. See chrony.conf(5) for more
# information about usable directives.

# Include configuration files found in /etc/chrony/conf.d.
confdir /etc/chrony/conf.d

# Use Debian vendor zone.
#pool 2.debian.pool.ntp.org iburst

# Use time sources from DHCP.
sourcedir /run/chrony-dhcp

# Use NTP sources found in /etc/chrony/sources.d.
sourcedir /etc/chrony/sources.d

# This directive specify the location of the file containing ID/key pairs for
# NTP authentication.
keyfile /etc/chrony/chrony.keys

# This directive specify the file into which chronyd will store the rate
# information.
driftfile /var/lib/chrony/chrony.drift

# Save NTS keys and cookies.
ntsdumpdir /var/lib/chrony

# Uncomment the following line to turn logging on.
#log tracking measurements statistics

# Log files location.
logdir /var/log/chrony

# Stop bad estimates upsetting machine clock.
maxupdateskew 100.0

# This directive enables kernel synchronisation (every 11 minutes) of the
# real-time clock. Note that it can't be used along with the 'rtcfile' directive.
rtcsync

# Step the system clock instead of slewing it if the adjustment is larger than
# one second, but only in the first three clock updates.
makestep 1 3

# Get TAI-UTC offset and leap seconds from the system tz database.
# This directive must be commented out when using time sources serving
# leap-smeared time.
leapsectz right/UTC
"""


@dataclass(eq=False)
class CommentLines(_TextEdit):
    """Comment out every line matching `regexp` except `keep` lines; `default` is the file to start from when
    it does not exist yet (None: leave a missing file alone, a later package install brings it)."""

    path: str
    regexp: str
    keep: tuple[str, ...] = ()
    default: str | None = None
    mode: str = "0644"
    owner: str = "root"
    group: str = "root"
    create: bool = True
    backup: bool = True  # False: no `<path>.<stamp>.hive~` copy before a change
    kind = "comment"

    def __post_init__(self) -> None:
        """Bad paths and patterns fail at construction."""
        self._check("present")
        self._pattern = re.compile(self.regexp)
        self.create = self.default is not None

    @property
    def ident(self) -> str:
        """Reports name the file and the pattern."""
        return f"comment[{self.path}:{self.regexp}]"

    def edit(self, text: str | None) -> str | None:
        """Prefix `#` to matching lines; a missing file becomes `default` (edited the same way)."""
        if text is None:
            if self.default is None:
                return None
            text = self.default
        out = []
        for line in text.splitlines(keepends=True):
            bare = line.rstrip("\r\n")
            out.append("#" + line if self._pattern.search(bare) and bare.strip() not in self.keep else line)
        return "".join(out)

    def describe(self, old: str | None, new: str) -> str:
        """What the report says."""
        if old is None:
            return f"create {self.path} without default time sources"
        return f"comment out default time sources in {self.path}"


def ntp_servers(value: Any) -> list[str]:
    """hive_ntp_servers as a list of host names/addresses (a single string is one server)."""
    servers = [value] if isinstance(value, str) else list(value or [])
    for s in servers:
        if not isinstance(s, str) or not _SERVER.match(s):
            raise StepFailed(f"hive_ntp_servers: {s!r} is not a host name or address")
    return servers


def server_lines(servers: list[str]) -> list[str]:
    """hive-builder's `server <ntp> iburst`, one per server."""
    return [f"server {s} iburst" for s in servers]


def unit(facts: Facts) -> str:
    """The chrony unit: `chronyd` on EL, `chrony` on Debian."""
    return "chronyd" if facts.is_redhat else "chrony"


def debian_primitives(servers: list[str]) -> list[Primitive]:
    """Config first (so the daemon's first start never uses the pool), then the package, then the service."""
    restart = restart_handler("chrony")
    lines = server_lines(servers)
    return [
        Directory(path=DEBIAN_SOURCES_DIR, mode="0755"),
        File(path=DEBIAN_SOURCES, content="# managed by hive_nornir: hive_ntp_servers\n" + "\n".join(lines) + "\n",
             mode="0644").with_notify(restart),
        CommentLines(path=DEBIAN_CONF, regexp=DEFAULT_SOURCE, default=DEBIAN_STOCK).with_notify(restart),
        LineInFile(path=DEBIAN_CONF, line=f"sourcedir {DEBIAN_SOURCES_DIR}",
                   regexp=rf"^\s*sourcedir\s+{re.escape(DEBIAN_SOURCES_DIR)}\s*$").with_notify(restart),
        Packages(names=["chrony"]),
        Service(name="chrony", enabled=True, state="started"),
    ]


def el_primitives(servers: list[str]) -> list[Primitive]:
    """hive-builder's edits of /etc/chrony.conf, after the package (an RPM install does not start chronyd)."""
    restart = restart_handler("chronyd")
    lines = server_lines(servers)
    return [
        Packages(names=["chrony"]),
        CommentLines(path=EL_CONF, regexp=DEFAULT_SOURCE, keep=tuple(lines)).with_notify(restart),
        BlockInFile(path=EL_CONF, block="\n".join(lines), marker=BLOCK_MARKER, create=False).with_notify(restart),
        Service(name="chronyd", enabled=True, state="started"),
    ]


def ntp_primitives(facts: Facts, servers: list[str]) -> list[Primitive]:
    """The family's layout: Debian's sources.d file, EL's block in /etc/chrony.conf."""
    if not servers:
        raise StepFailed("hive_ntp_servers is empty")
    return el_primitives(servers) if facts.is_redhat else debian_primitives(servers)


def ntp_client(ctx: TaskContext) -> None:
    """Runs where hive_ntp_servers is set (the step's condition), like hive-builder's ntp-client role."""
    ctx.ensure(ntp_primitives(ctx.facts, ntp_servers(ctx.var("hive_ntp_servers"))))
