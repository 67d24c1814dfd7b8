"""drbd: DRBD userland, its global config, the LVM thin pool on the secondary disk, sysctls, unit and helper.

hive-builder's drbd role (reference hive-builder.md 3.14). The firewall rule set `drbd` (tcp 7000:7999) comes
from hive_nornir/tasks/net/firewall.py. Per-volume work (thin LVs, .res files) belongs to build-volumes.
"""

from __future__ import annotations

import hashlib
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hive_nornir.engine.errors import StepFailed
from hive_nornir.engine.protocols import TaskContext
from hive_nornir.facts import Facts
from hive_nornir.payload import payload_text
from hive_nornir.primitives.base import Plan, Primitive, q
from hive_nornir.primitives.command import Command
from hive_nornir.primitives.file import File
from hive_nornir.primitives.lines import _TextEdit
from hive_nornir.primitives.packages import Packages
from hive_nornir.primitives.probes import kv_lines
from hive_nornir.primitives.sysctl import Sysctl
from hive_nornir.tasks.net.firewall import rule_set_for

DEVICE_ORDER = ("/dev/disk/azure/scsi1/lun0", "/dev/sdc", "/dev/sdb", "/dev/vdc", "/dev/vdb", "/dev/xvdb",
                "/dev/nvme1n1", "/dev/sda")
DEFAULT_DISKS = ({"device_order": list(DEVICE_ORDER), "vgname": "drbdvg", "poolname": "drbdpool"},)
GLOBAL_COMMON = "/etc/drbd.d/global_common.conf"
TCP_BUFFERS = "131072 1048576 16777216"
UNIT_PATH = "/usr/lib/systemd/system/drbd-resource@.service"
WAITDEVICE_PATH = "/usr/bin/waitdevice"
RPM_TARBALL = "/root/drbd9-rpm.tar.gz"
RPM_DIR = "/root/RPMS"
SELINUX_TE = "/root/hive.te"
DEFAULT_URL = ("https://github.com/procube-open/drbd9-rpm-automated/releases/download/"
               "drbd-9.3.2-v9.34.0-{kernel}/drbd-9.3.2-v9.34.0-{kernel}.tar.gz")
MIB_SECTORS = 2048  # 512-byte sectors per MiB: sysfs sizes are always in 512-byte units

UNIT = payload_text("drbd-resource@.service")
# The resource's backing LV may appear a moment after boot: `drbdadm adjust` 50 tries, 0.2 s apart.
WAITDEVICE = payload_text("waitdevice.sh")
# EL with SELinux: udev's helper (kernel_generic_helper_t) reads /proc and DRBD's run dir for its symlinks.
SELINUX_POLICY = payload_text("drbd-hive.te")
DISK_PROBE = payload_text("drbd_disk_probe.sh")

# --- packages ---------------------------------------------------------------------------------------

def download_url(facts: Facts, url: str | None) -> str:
    """hive_drbd_download_url, else procube's prebuilt tarball for the running kernel (kmods are per kernel)."""
    return url or DEFAULT_URL.format(kernel=facts.kernel)


def package_primitives(facts: Facts, url: str | None = None) -> list[Primitive]:
    """Debian: drbd-utils from the distribution. EL: the rpm tarball (utils + kmod), then lvm2 and parted."""
    if not facts.is_redhat:
        return [Packages(names=["drbd-utils", "lvm2", "parted"])]
    src = download_url(facts, url)
    part = f"{RPM_TARBALL}.part"
    all_installed = (f"set -- {RPM_DIR}/*/*.rpm; [ -e \"$1\" ] || exit 1; "
                     "for f; do rpm -q \"$(rpm -qp --qf '%{NAME}' \"$f\")\" || exit 1; done")
    items: list[Primitive] = []
    if facts.selinux.lower() in ("enforcing", "permissive"):
        items += [
            File(path=SELINUX_TE, content=SELINUX_POLICY, mode="0600"),
            Packages(names=["selinux-policy-devel"]),
            Command(cmd="cd /root && make -f /usr/share/selinux/devel/Makefile hive.pp && semodule -i hive.pp",
                    unless="semodule -l | grep -qx hive"),
        ]
    items += [
        Command(cmd=f"curl -fsSL --retry 3 --connect-timeout 30 -o {q(part)} {q(src)} && mv -f {q(part)} "
                    f"{q(RPM_TARBALL)}", creates=RPM_TARBALL),
        Command(cmd=f"tar -xzf {q(RPM_TARBALL)} -C /root", creates=RPM_DIR),
        Command(cmd=f"{facts.pkg_manager or 'dnf'} install -y --nogpgcheck {RPM_DIR}/*/*.rpm", unless=all_installed),
        Packages(names=["lvm2", "parted"]),
    ]
    return items


# --- /etc/drbd.d/global_common.conf -------------------------------------------------------------------

_USAGE = re.compile(r"usage-count .*;")
_MINOR_LIVE = re.compile(r"^\s*minor-count\s+\S+;")
_MINOR_HINT = re.compile(r"# minor-count")
_GLOBAL = re.compile(r"^\s*global\s*\{")
USAGE_LINE = "        usage-count no;"
MINOR_LINE = "        minor-count 128;"


def _replace_last(lines: list[str], pattern: re.Pattern[str], new: str) -> bool:
    """Replace the last line the pattern finds (lineinfile's rule); False when none matches."""
    hits = [i for i, ln in enumerate(lines) if pattern.search(ln)]
    if not hits:
        return False
    lines[hits[-1]] = new
    return True


def _insert_after_last(lines: list[str], pattern: re.Pattern[str], new: str) -> bool:
    """Insert after the last matching line; False when none matches."""
    hits = [i for i, ln in enumerate(lines) if pattern.search(ln)]
    if not hits:
        return False
    lines.insert(hits[-1] + 1, new)
    return True


def edit_global_common(text: str) -> str:
    """`usage-count no;` and `minor-count 128;` (after the `# minor-count` hint), both inside `global {}`."""
    lines = text.splitlines()
    if USAGE_LINE not in lines and not _replace_last(lines, _USAGE, USAGE_LINE) \
            and not _insert_after_last(lines, _GLOBAL, USAGE_LINE):
        lines += ["global {", USAGE_LINE, "}"]
    if MINOR_LINE not in lines and not _replace_last(lines, _MINOR_LIVE, MINOR_LINE):
        _insert_after_last(lines, _MINOR_HINT, MINOR_LINE) or _insert_after_last(lines, _GLOBAL, MINOR_LINE)
    return "\n".join(lines) + "\n"


@dataclass(eq=False)
class GlobalCommon(_TextEdit):
    """The two lines hive-builder sets in the package's global_common.conf (edited, never replaced)."""

    path: str = GLOBAL_COMMON
    mode: str = "0644"
    owner: str = "root"
    group: str = "root"
    create: bool = False  # the package ships the file: before it is installed this is a missing prerequisite
    backup: bool = True  # False: no `<path>.<stamp>.hive~` copy before a change
    kind = "line"

    def __post_init__(self) -> None:
        """Same construction checks as the line primitives."""
        self._check("present")

    @property
    def ident(self) -> str:
        """Reports name the file and the settings."""
        return f"drbd-global[{self.path}:usage-count,minor-count]"

    def edit(self, text: str | None) -> str | None:
        """None (leave alone) when the file is absent: create=False reports it as missing."""
        return None if text is None else edit_global_common(text)

    def plan(self, facts: Facts, probe_output: str) -> Plan:
        """A missing file is a missing prerequisite (the package brings it), never a silent no-op."""
        result = super().plan(facts, probe_output)
        if "exists=no" in probe_output.splitlines() and not result.changed:
            result.missing = f"{self.path} does not exist (drbd-utils not installed yet)"
        return result

    def describe(self, old: str | None, new: str) -> str:
        """One line for the report."""
        return f"set usage-count no, minor-count 128 in {self.path}"


def config_primitives() -> list[Primitive]:
    """Global config, tcp buffers for replication, the per-resource unit and its helper."""
    return [
        GlobalCommon(),
        Sysctl(name="net.ipv4.tcp_rmem", value=TCP_BUFFERS),
        Sysctl(name="net.ipv4.tcp_wmem", value=TCP_BUFFERS),
        File(path=UNIT_PATH, content=UNIT).with_notify("daemon-reload"),
        File(path=WAITDEVICE_PATH, content=WAITDEVICE, mode="0755"),
    ]


# --- the backing pool -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Partition:
    """A partition as the kernel reports it (sysfs), in 512-byte sectors."""

    number: int
    start: int
    size: int

    @property
    def end(self) -> int:
        """Last sector (inclusive), as parted prints it."""
        return self.start + self.size - 1


@dataclass(frozen=True)
class Disk:
    """A candidate device: its path, size in 512-byte sectors, partitions."""

    path: str
    sectors: int
    partitions: tuple[Partition, ...] = ()


@dataclass(frozen=True)
class PoolPlan:
    """Where the pool goes: hive-builder's partition arithmetic (MiB) and thin pool size formula."""

    disk: str
    number: int
    start_mib: int
    end_mib: int
    new_label: bool

    @property
    def size_mib(self) -> int:
        """The partition size parted reports in MiB."""
        return self.end_mib - self.start_mib

    @property
    def pool_mib(self) -> int:
        """Leaves room for the pool metadata and its spare: ((part_MiB-8)*8192//8193//16*16)."""
        return (self.size_mib - 8) * 8192 // 8193 // 16 * 16

    @property
    def part_dev(self) -> str:
        """The new partition's device node."""
        return partition_device(self.disk, self.number)


def partition_device(disk: str, number: int) -> str:
    """/dev/vdb1, /dev/nvme1n1p1 (name ends in a digit), /dev/disk/azure/scsi1/lun0-part1 (by-path link)."""
    if disk.startswith("/dev/disk/"):
        return f"{disk}-part{number}"
    return f"{disk}{'p' if disk[-1].isdigit() else ''}{number}"




def disk_probe(vg: str, devices: Sequence[str]) -> str:
    """Read-only: does the VG exist, and each existing device's size and partitions from sysfs (no parted
    needed, so check mode on a fresh host can still predict)."""
    return f"hive_drbd_disks() {{\n{DISK_PROBE}}}\nhive_drbd_disks {shlex.join([vg, *devices])}\n"


def parse_disks(output: str) -> tuple[bool, list[Disk]]:
    """(VG exists, devices in probe order)."""
    vg = False
    sizes: dict[str, int] = {}
    parts: dict[str, list[Partition]] = {}
    for key, value in kv_lines(output):
        fields = value.split()
        if key == "vg" and value == "yes":
            vg = True
        elif key == "disk" and len(fields) == 2:
            sizes[fields[0]] = int(fields[1])
            parts.setdefault(fields[0], [])
        elif key == "part" and len(fields) == 4:
            parts.setdefault(fields[0], []).append(Partition(*(int(f) for f in fields[1:])))
    disks = [Disk(p, s, tuple(sorted(parts[p], key=lambda x: x.number))) for p, s in sizes.items()]
    return vg, disks


def pick_disk(disks: Sequence[Disk]) -> Disk | None:
    """hive-builder's rule: the first existing device without partitions, else the first existing one."""
    for disk in disks:
        if not disk.partitions:
            return disk
    return disks[0] if disks else None


def plan_pool(disk: Disk) -> PoolPlan:
    """Partition number existing+1, from 1 MiB (or the MiB after the last partition) to the disk's last MiB."""
    start = 1 if not disk.partitions else disk.partitions[-1].end // MIB_SECTORS + 1
    end = (disk.sectors - 34) // MIB_SECTORS
    plan = PoolPlan(disk.path, len(disk.partitions) + 1, start, end, new_label=not disk.partitions)
    if plan.pool_mib < 16:
        raise StepFailed(f"{disk.path}: only {max(plan.size_mib, 0)} MiB free after its partitions; "
                         f"too small for the DRBD thin pool")
    return plan


# A udev-less host (containers) gets no node for a new partition: make it from the kernel's sysfs entry.
PART_NODE = r"""(
d={disk}; n={number}; p={part}
if command -v udevadm >/dev/null 2>&1; then udevadm settle || true; fi
[ -b "$p" ] && exit 0
set -- $(stat -L -c '%t %T' "$d"); sys=/sys/dev/block/$((0x$1)):$((0x$2))
find_part() {{
  for f in $sys/*/partition; do
    if [ -f "$f" ] && [ "$(cat "$f")" = "$n" ]; then cat "${{f%/partition}}/dev"; return 0; fi
  done
  return 1
}}
mm=$(find_part) || {{ partx -a -n "$n" "$d" 2>/dev/null || true; mm=$(find_part); }} || {{
  echo "partition $n of $d is not known to the kernel" >&2; exit 1; }}
mknod -m 0660 "$p" b "${{mm%:*}}" "${{mm#*:}}"
chgrp disk "$p" 2>/dev/null || true
)"""

# Normal path: lvcreate. Only where LVM activation is switched off in lvm.conf AND the kernel has no
# device-mapper (a container on a kernel without dm, like the test lab) lvcreate refuses a thin pool
# ("Can't create thin-pool without using device-mapper kernel driver"); there the pool is written into the VG
# metadata only (vgcfgrestore), exactly as lvcreate would record it: what `activation = 0` does for plain LVs.
THINPOOL = r"""(
vg={vg}; pool={pool}; mib={mib}
if grep -qw device-mapper {proc_devices} || [ "$(lvmconfig --type full global/activation 2>/dev/null)" != activation=0 ]
then
  lvcreate -y -L "${{mib}}M" --chunksize 1024K --zero n -T "$vg/$pool"; exit
fi
echo "no device-mapper and LVM activation off: writing thin pool $vg/$pool into the VG metadata only" >&2
t=$(mktemp); trap 'rm -f "$t" "$t.new" "$t.awk"' EXIT
vgcfgbackup -q -f "$t" "$vg" >/dev/null
cat > "$t.awk" <<'AWK'
function lv(name, ext, flags, pe) {{
  n = split(ids, id, " ")
  printf "\t\t%s {{\n\t\t\tid = \"%s\"\n\t\t\tstatus = [%s]\n\t\t\tflags = []\n", name, id[++k], flags
  printf "\t\t\tsegment_count = 1\n\n\t\t\tsegment1 {{\n\t\t\t\tstart_extent = 0\n\t\t\t\textent_count = %d\n", ext
  if (pe < 0) {{
    printf "\t\t\t\ttype = \"thin-pool\"\n\t\t\t\tmetadata = \"%s_tmeta\"\n\t\t\t\tpool = \"%s_tdata\"\n", pname, pname
    printf "\t\t\t\ttransaction_id = 0\n\t\t\t\tchunk_size = 2048\n\t\t\t\tdiscards = \"passdown\"\n"
    printf "\t\t\t\tzero_new_blocks = 0\n\t\t\t}}\n\t\t}}\n\n"
  }} else {{
    printf "\t\t\t\ttype = \"striped\"\n\t\t\t\tstripe_count = 1\n\t\t\t\tstripes = [\n\t\t\t\t\t\"%s\", %d\n", pv, pe
    printf "\t\t\t\t]\n\t\t\t}}\n\t\t}}\n\n"
  }}
}}
/^[ \t]*extent_size = / {{ es = $3 }}
/^[ \t]*pv0 \{{/ {{ pv = "pv0" }}
/^[ \t]*pe_count = / {{ pe_count = $3 }}
/^[ \t]*logical_volumes / {{ print "VG already has logical volumes" > "/dev/stderr"; exit 3 }}
/^}}/ && !done {{
  pname = "{pool}"
  data = int(mib * 2048 / es)
  meta_sec = mib / 8; if (meta_sec < 4096) meta_sec = 4096  # 64 bytes per 1 MiB chunk, at least 2 MiB
  meta = int((meta_sec + es - 1) / es)
  if (pv == "" || data + 2 * meta > pe_count) {{ print "not enough extents" > "/dev/stderr"; exit 4 }}
  printf "\n\tlogical_volumes {{\n\n"
  lv(pname, data, "\"READ\", \"WRITE\", \"VISIBLE\"", -1)
  lv("lvol0_pmspare", meta, "\"READ\", \"WRITE\"", 0)
  lv(pname "_tmeta", meta, "\"READ\", \"WRITE\"", meta)
  lv(pname "_tdata", data, "\"READ\", \"WRITE\"", 2 * meta)
  printf "\t}}\n"
  done = 1
}}
{{ print }}
AWK
awk -v mib="$mib" -v ids="{ids}" -f "$t.awk" "$t" > "$t.new"
vgcfgrestore -q --force -f "$t.new" "$vg"
)"""


def lvm_uuid(seed: str) -> str:
    """A stable LVM-style id (6-4-4-4-4-4-6 of [A-Za-z0-9]) for metadata written without lvcreate."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    digest = hashlib.sha256(seed.encode()).digest()
    chars = "".join(alphabet[b % len(alphabet)] for b in digest[:32])
    cuts = (6, 4, 4, 4, 4, 4, 6)
    out, pos = [], 0
    for c in cuts:
        out.append(chars[pos:pos + c])
        pos += c
    return "-".join(out)


def thinpool_command(vg: str, pool: str, mib: int, host: str, proc_devices: str = "/proc/devices") -> str:
    """lvcreate the thin pool (chunk 1 MiB, no zeroing); the metadata-only branch is for dm-less kernels."""
    if not re.fullmatch(r"[A-Za-z0-9+_.-]+", pool):
        raise StepFailed(f"invalid thin pool name {pool!r}")
    ids = " ".join(lvm_uuid(f"{host}/{vg}/{name}") for name in
                   (pool, "lvol0_pmspare", f"{pool}_tmeta", f"{pool}_tdata"))
    return THINPOOL.format(vg=q(vg), pool=pool, mib=int(mib), ids=ids, proc_devices=q(proc_devices)).strip("\n")


@dataclass(eq=False)
class NamedCommand(Command):
    """A guarded shell script reported by what it does, not by its text (the scripts are long)."""

    label: str = ""

    @property
    def ident(self) -> str:
        """Reports name the action."""
        return f"command[{self.label}]"

    def plan(self, facts: Facts, probe_output: str) -> Plan:
        """Command's decision, with the label as summary and diff."""
        result = super().plan(facts, probe_output)
        if result.changed:
            result.summary, result.diff = self.label, f"+ {self.label}\n"
        return result


def node_primitive(disk: str, number: int) -> Command:
    """Make a partition's device node from sysfs when no udev made it (containers; reboots of udev-less hosts)."""
    part = partition_device(disk, number)
    return NamedCommand(cmd=PART_NODE.format(disk=q(disk), number=number, part=q(part)).strip("\n"),
                        unless=f"[ -b {q(part)} ]", label=f"device node {part} (partition {number} of {disk})")


def pool_primitives(plan: PoolPlan, vg: str, pool: str, host: str, label: str | None = None) -> list[Primitive]:
    """Partition (lvm flag), its node, the VG on it, the thin pool: each guarded, so a rerun is a no-op."""
    disk, n, part = plan.disk, plan.number, plan.part_dev
    mklabel = f"mklabel {q(label or 'msdos')} " if plan.new_label else ""
    in_table = f"parted -s -m {q(disk)} unit s print 2>/dev/null | grep -q '^{n}:'"
    # parted's "unable to inform the kernel" is not fatal when the table has the partition (hive-builder).
    mkpart = (f"parted -s -a none {q(disk)} -- {mklabel}mkpart primary {plan.start_mib}MiB {plan.end_mib}MiB "
              f"set {n} lvm on || {in_table}")
    return [
        Command(cmd=mkpart, unless=in_table),
        node_primitive(disk, n),
        Command(cmd=f"vgcreate -y {q(vg)} {q(part)}", unless=f"vgs {q(vg)}"),
        NamedCommand(cmd=thinpool_command(vg, pool, plan.pool_mib, host), unless=f"lvs {q(vg)}/{q(pool)}",
                     label=f"thin pool {vg}/{pool}: {plan.pool_mib} MiB, chunk 1 MiB, no zeroing"),
    ]


def disk_specs(value: Any) -> list[dict[str, Any]]:
    """hive_mirrored_disk_devices (default: one disk, VG drbdvg, thin pool drbdpool) validated."""
    specs = list(value) if value else [dict(d) for d in DEFAULT_DISKS]
    for spec in specs:
        if not isinstance(spec, dict) or not spec.get("vgname") or not spec.get("poolname"):
            raise StepFailed("hive_mirrored_disk_devices entries need vgname and poolname (and device_order)")
    return specs


def ensure_pool(ctx: TaskContext, spec: dict[str, Any]) -> None:
    """hive-builder's vg.yml: skipped when the VG exists; else pick the disk and build partition, VG, pool."""
    vg, pool = str(spec["vgname"]), str(spec["poolname"])
    devices = [str(d) for d in (spec.get("device_order") or DEVICE_ORDER)]
    probe = disk_probe(vg, devices)
    exists, disks = parse_disks(ctx.run(probe).stdout)
    # Without udev (containers, or after a reboot of a udev-less host) partitions the kernel knows may have no
    # node, and LVM then cannot see the PV on them: restore the nodes before deciding anything.
    nodes = [node_primitive(d.path, p.number) for d in disks for p in d.partitions]
    if nodes and ctx.ensure(nodes):
        if ctx.check:
            return  # whether the VG sits on those partitions is known only once their nodes exist
        exists, disks = parse_disks(ctx.run(probe).stdout)
    if exists:
        return
    disk = pick_disk(disks)
    if disk is None:
        raise StepFailed(f"no mirrored disk for VG {vg}: none of {', '.join(devices)} exists "
                         f"(set hive_no_mirrored_device: True on hosts without one)")
    label = ctx.var("hive_partition_label")
    ctx.ensure(pool_primitives(plan_pool(disk), vg, pool, ctx.name, str(label) if label else None))


def has_mirrored_device(host_vars: Any) -> bool:
    """hive_no_mirrored_device(s): a diskless DRBD node (no VG, volumes are `disk none` on it)."""
    return not (host_vars.get("hive_no_mirrored_device", None) or host_vars.get("hive_no_mirrored_devices", None))


def drbd(ctx: TaskContext) -> None:
    """Userland first (it ships global_common.conf and drbdadm), then config, then the pool on the disk."""
    facts = ctx.facts
    ctx.ensure(package_primitives(facts, ctx.var("hive_drbd_download_url")))
    ctx.ensure([*config_primitives(), *rule_set_for(ctx, "drbd")])
    if not has_mirrored_device(ctx.host):
        return
    for spec in disk_specs(ctx.var("hive_mirrored_disk_devices")):
        ensure_pool(ctx, spec)


def drbd_step_wanted(host: Any) -> bool:
    """The runbook condition: the stage gives hives a mirrored disk, or the provider brings its own disks."""
    return host.get("hive_mirrored_disk_size", None) is not None or \
        host.get("hive_provider", None) in ("prepared", "kickstart")
