"""base on RHEL/AlmaLinux: yum mirror rewrite, kernel pinning and exclusion, SELinux mode, dnf services."""

from __future__ import annotations

import re
from dataclasses import dataclass

from hive_nornir.facts import Facts
from hive_nornir.primitives.base import Primitive, q
from hive_nornir.primitives.command import Command
from hive_nornir.primitives.file import File
from hive_nornir.primitives.filesystem import Directory
from hive_nornir.primitives.lines import LineInFile, _TextEdit
from hive_nornir.primitives.packages import Packages

# hive-builder's fixed-yum-url.yml: the stock repo files whose mirrors it rewrites.
REPO_FILES = (
    "CentOS-AppStream.repo", "CentOS-Base.repo", "CentOS-Extras.repo",
    "almalinux.repo", *(f"almalinux-{name}.repo" for name in (
        "appstream", "baseos", "crb", "extras", "highavailability", "nfv", "plus",
        "resilientstorage", "rt", "saphana", "sap")),
)
REPO_GLOBS = ("CentOS-Linux-*.repo", "CentOS-Stream-*.repo")
SELINUX_MODES = ("enforcing", "permissive", "disabled")
NM_WAIT_OVERRIDE = "[Service]\nExecStart=\nExecStart=/usr/bin/nm-online -q --timeout=30\nSuccessExitStatus=1\n"


def mirror_sed(yum_url: str) -> str:
    """sed -E program: comment mirrorlist=, point baseurl= at the mirror (hive-builder's exact regexp)."""
    url = yum_url.rstrip("/").replace("\\", "\\\\").replace("|", "\\|").replace("&", "\\&")
    return ("s|^(mirrorlist=.*)$|#\\1|; "
            f"s|^#? *baseurl=.*/(centos\\|\\$contentdir\\|almalinux)/(.*)$|baseurl={url}/\\2|")


def yum_mirror_primitives(yum_url: str) -> list[Primitive]:
    """One guarded sed per repo file: it runs only when it would change the file, so re-runs are no-ops."""
    program = mirror_sed(yum_url)
    items: list[Primitive] = [
        Command(cmd="sed -i -E 's/^enabled=.*/enabled=0/' /etc/yum/pluginconf.d/fastestmirror.conf",
                onlyif="grep -q '^enabled=1' /etc/yum/pluginconf.d/fastestmirror.conf"),
    ]
    paths = [f"/etc/yum.repos.d/{name}" for name in REPO_FILES]
    globs = " ".join(f"/etc/yum.repos.d/{pattern}" for pattern in REPO_GLOBS)
    for path in paths:
        items.append(Command(cmd=f"sed -i -E {q(program)} {q(path)}",
                             onlyif=f"test -f {q(path)} && ! sed -E {q(program)} {q(path)} | cmp -s - {q(path)}"))
    items.append(Command(
        cmd=f"for f in {globs}; do [ -f \"$f\" ] && sed -i -E {q(program)} \"$f\"; done; true",
        onlyif=f"for f in {globs}; do [ -f \"$f\" ] && ! sed -E {q(program)} \"$f\" | cmp -s - \"$f\" && exit 0; "
               "done; exit 1"))
    return items


def dnf_conf(facts: Facts) -> str:
    """dnf reads /etc/dnf/dnf.conf (EL8+); /etc/yum.conf is a symlink to it there and the real file on EL7."""
    return "/etc/yum.conf" if facts.pkg_manager == "yum" else "/etc/dnf/dnf.conf"


def kernel_primitives(facts: Facts, kernel_version: str | None) -> list[Primitive]:
    """Pin the kernel the DRBD kmod is built for (hives), then exclude kernel* so dnf never moves it."""
    version = kernel_version or facts.kernel
    items: list[Primitive] = []
    if version:
        pkgs = [f"kernel-{version}", f"kernel-modules-extra-{version}"]
        listed = " ".join(q(p) for p in pkgs)
        items.append(Command(cmd=f"{facts.pkg_manager or 'dnf'} install -y --disableexcludes=main {listed}",
                             unless=f"rpm -q {listed} >/dev/null"))
    return items


_SECTION = re.compile(r"^\s*\[(.+)\]\s*$")
_EXCLUDE = re.compile(r"^(\s*(?:exclude|excludepkgs)\s*=)(.*?)(\r?\n?)$")


@dataclass(eq=False)
class ExcludeInMain(_TextEdit):
    """One pattern in [main]'s exclude list: added to the site's own list, never replacing it (hive-builder's
    `lineinfile ^exclude=` dropped the site's excludes); no list yet: `exclude=<pattern>` ends [main]."""

    path: str
    pattern: str = "kernel*"
    mode: str = "0644"
    owner: str = "root"
    group: str = "root"
    create: bool = True
    secret: bool = False
    backup: bool = True  # False: no `<path>.<stamp>.hive~` copy before a change
    kind = "line"

    @property
    def ident(self) -> str:
        """Reports name the file and the pattern."""
        return f"line[{self.path}:exclude {self.pattern}]"

    def edit(self, text: str | None) -> str | None:
        """Append the pattern to the first exclude line of [main], or add the line at the end of [main]."""
        lines = (text or "").splitlines(keepends=True)
        heads = [(i, m.group(1).strip()) for i, ln in enumerate(lines) if (m := _SECTION.match(ln))]
        bounds = [(i, heads[k + 1][0] if k + 1 < len(heads) else len(lines))
                  for k, (i, name) in enumerate(heads) if name == "main"]
        if not bounds:  # no [main] (or no file): one at the top
            return f"[main]\nexclude={self.pattern}\n" + ("\n" + text if text else "")
        start, end = bounds[0]
        for i in range(start + 1, end):
            m = _EXCLUDE.match(lines[i])
            if not m:
                continue
            if self.pattern in [x for x in re.split(r"[\s,]+", m.group(2)) if x]:
                return text
            value = m.group(2).rstrip()
            sep = (", " if "," in value else " ") if value else ""
            lines[i] = f"{m.group(1)}{value}{sep}{self.pattern}{m.group(3) or chr(10)}"
            return "".join(lines)
        pos = end
        while pos > start + 1 and not lines[pos - 1].strip():
            pos -= 1  # before the blank lines that end [main]
        if not lines[pos - 1].endswith("\n"):
            lines[pos - 1] += "\n"
        lines.insert(pos, f"exclude={self.pattern}\n")
        return "".join(lines)

    def describe(self, old: str | None, new: str) -> str:
        """What the edit does, with the path."""
        return f"exclude {self.pattern} in [main] of {self.path}"


def exclude_kernel(facts: Facts) -> Primitive:
    """kernel* in [main]'s exclude list, hive-builder's guard for the prebuilt DRBD kmod."""
    return ExcludeInMain(path=dnf_conf(facts))


def selinux_primitives(mode: str, facts: Facts) -> list[Primitive]:
    """Persist the mode for the next boot and apply enforcing/permissive now (disabled needs a reboot)."""
    if mode not in SELINUX_MODES:
        raise ValueError(f"hive_selinux: {mode!r} is not one of {', '.join(SELINUX_MODES)}")
    items: list[Primitive] = []
    if mode != "disabled":
        items.append(Packages(names=["selinux-policy-devel"]))
    items.append(LineInFile(path="/etc/selinux/config", regexp=r"^SELINUX=", line=f"SELINUX={mode}"))
    items.append(LineInFile(path="/etc/selinux/config", regexp=r"^SELINUXTYPE=", line="SELINUXTYPE=targeted"))
    if mode in ("enforcing", "permissive") and facts.selinux.lower() in ("enforcing", "permissive"):
        live = "1" if mode == "enforcing" else "0"
        items.append(Command(cmd=f"setenforce {live}", unless=f"test \"$(getenforce)\" = {q(mode.capitalize())}"))
    return items


NM_WAIT_DROPIN_DIR = "/etc/systemd/system/NetworkManager-wait-online.service.d"  # absent on a stock EL host


def dnf_service_primitives() -> list[Primitive]:
    """Bounded NetworkManager-wait-online and no dnf-automatic surprises, as hive-builder configures EL."""
    return [
        Directory(path=NM_WAIT_DROPIN_DIR, mode="0755"),
        File(path=f"{NM_WAIT_DROPIN_DIR}/override.conf",
             content=NM_WAIT_OVERRIDE).with_notify("daemon-reload"),
        Command(cmd="systemctl disable --now dnf-automatic.timer",
                onlyif="systemctl is-enabled dnf-automatic.timer >/dev/null 2>&1 "
                       "|| systemctl is-active dnf-automatic.timer >/dev/null 2>&1"),
    ]
