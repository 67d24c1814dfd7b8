"""base: the packages every server needs, its short host name, time zone, locale, environment and sysstat."""

from __future__ import annotations

from hive_nornir.engine.errors import StepFailed
from hive_nornir.engine.protocols import TaskContext
from hive_nornir.facts import Facts
from hive_nornir.pki_paths import ca_anchor_path
from hive_nornir.primitives.base import Primitive, q
from hive_nornir.primitives.command import Command
from hive_nornir.primitives.file import File
from hive_nornir.primitives.filesystem import Symlink
from hive_nornir.primitives.packages import Packages
from hive_nornir.primitives.service import Service
from hive_nornir.tasks.host.base_el import (
    dnf_service_primitives,
    exclude_kernel,
    kernel_primitives,
    selinux_primitives,
    yum_mirror_primitives,
)
from hive_nornir.tasks.host.base_env import (
    cloud_init_primitives,
    locale_primitives,
    pip_index_primitives,
    proxy_primitives,
    proxy_url,
)

COMMON_PACKAGES = ("wget", "unzip", "sysstat", "strace", "tcpdump", "lsof", "bash-completion", "tzdata", "sudo",
                   "chrony", "rsyslog")
FAMILY_PACKAGES = {
    "debian": ("vim-tiny", "telnet", "conntrack", "locales", "logrotate", "openssl", "ca-certificates"),
    "redhat": ("vim-enhanced", "telnet", "conntrack-tools", "python3-libselinux", "glibc-langpack-en",
               "rsyslog-logrotate", "openssl", "ca-certificates"),
}


def base_packages(facts: Facts, ntp_managed: bool = False) -> list[str]:
    """hive-builder's base list per family; chrony waits for ntp-client when it has servers to configure first."""
    names = [*COMMON_PACKAGES, *FAMILY_PACKAGES.get(facts.os_family, ())]
    return [n for n in names if not (ntp_managed and n == "chrony")]


def hostname_primitives(short: str) -> list[Primitive]:
    """Persist the short name and make the running kernel use it (hive-builder sets the short name)."""
    return [
        File(path="/etc/hostname", content=short + "\n"),
        Command(cmd=f"hostname {q(short)}", unless=f"test \"$(hostname)\" = {q(short)}"),
    ]


def timezone_primitives(facts: Facts, zone: str) -> list[Primitive]:
    """/etc/localtime points at the zone file; Debian also keeps the name in /etc/timezone."""
    # the site check knows the controller's tz database; the host's own tzdata decides (never a dangling link)
    items: list[Primitive] = [Symlink(path="/etc/localtime", target=f"/usr/share/zoneinfo/{zone}",
                                      require_target=True)]
    if facts.is_debian:
        items.append(File(path="/etc/timezone", content=zone + "\n"))
    return items


def el_primitives(ctx: TaskContext, facts: Facts) -> tuple[list[Primitive], list[Primitive]]:
    """EL only: (before packages: mirror rewrite, kernel exclusion), (after: kernel pin on hives, SELinux, dnf)."""
    if not facts.is_redhat:
        return [], []
    before: list[Primitive] = []
    yum_url = ctx.var("hive_yum_url")
    if yum_url:
        before += yum_mirror_primitives(str(yum_url))
    before.append(exclude_kernel(facts))
    after: list[Primitive] = []
    if "hives" in {g.name for g in ctx.host.groups}:
        after += kernel_primitives(facts, ctx.var("hive_kernel_version"))
    after += selinux_primitives(str(ctx.var("hive_selinux") or "permissive"), facts)
    after += dnf_service_primitives()
    return before, after


def environment_primitives(ctx: TaskContext, facts: Facts) -> list[Primitive]:
    """Proxy and pip index in /etc/environment, only when the site sets them."""
    items: list[Primitive] = []
    proxy = ctx.var("hive_http_proxy")
    if proxy:
        url = proxy_url(str(proxy), str(ctx.var("hive_private_ip") or ""), ctx.var("hive_http_proxy_port"))
        servers = sorted(ctx.stage_hosts())
        items += proxy_primitives(url, servers, ca_anchor_path(facts))
    index_url = ctx.var("hive_pip_index_url")
    if index_url:
        items += pip_index_primitives(str(index_url), ctx.var("hive_pip_trusted_host"))
    return items


def base(ctx: TaskContext) -> None:
    """Repos first, then packages (later primitives need tzdata, sysstat, locales), then names, time, locale."""
    facts = ctx.facts
    short = ctx.name.split(".")[0]
    zone = str(ctx.var("hive_timezone") or "Etc/UTC")
    locale = ctx.var("hive_locale")
    try:
        before, after = el_primitives(ctx, facts)
        ctx.ensure([
            *before,
            Packages(names=base_packages(facts, ntp_managed=bool(ctx.var("hive_ntp_servers")))),
            *after,
            *environment_primitives(ctx, facts),
            *hostname_primitives(short),
            *cloud_init_primitives(facts),
            *timezone_primitives(facts, zone),
            *(locale_primitives(facts, str(locale)) if locale else []),
            Service(name="sysstat", enabled=True, state="started"),
        ])
    except ValueError as e:
        raise StepFailed(str(e)) from e
