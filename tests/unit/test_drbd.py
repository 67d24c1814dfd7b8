"""drbd task: canned facts and probe output in, exact commands, files and pool arithmetic out (both families)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from fake_host import FakeHost, stage_host

from hive_nornir.engine.errors import StepFailed
from hive_nornir.facts import canned
from hive_nornir.primitives.command import Command
from hive_nornir.primitives.file import File
from hive_nornir.primitives.packages import Packages
from hive_nornir.primitives.sysctl import Sysctl
from hive_nornir.tasks.storage.drbd import (
    UNIT,
    WAITDEVICE,
    Disk,
    GlobalCommon,
    Partition,
    PoolPlan,
    config_primitives,
    disk_probe,
    disk_specs,
    drbd_step_wanted,
    edit_global_common,
    has_mirrored_device,
    lvm_uuid,
    package_primitives,
    parse_disks,
    pick_disk,
    plan_pool,
    pool_primitives,
    thinpool_command,
)

DEBIAN = canned("debian", kernel="6.1.0-28-amd64")
REDHAT = canned("redhat", kernel="5.14.0-427.13.1.el9_4.x86_64")
KERNEL_URL = ("https://github.com/procube-open/drbd9-rpm-automated/releases/download/"
              "drbd-9.3.2-v9.34.0-5.14.0-427.13.1.el9_4.x86_64/drbd-9.3.2-v9.34.0-5.14.0-427.13.1.el9_4.x86_64.tar.gz")

# The head of drbd-utils 9.22.0's /etc/drbd.d/global_common.conf (Debian 12), verbatim.
DEBIAN_GLOBAL = """\
# DRBD is the result of over a decade of development by LINBIT.

global {
\tusage-count yes;

\t# Decide what kind of udev symlinks you want for "implicit" volumes
\tudev-always-use-vnr; # treat implicit the same as explicit volumes

\t# minor-count dialog-refresh disable-ip-verification
\t# cmd-timeout-short 5; cmd-timeout-medium 121; cmd-timeout-long 600;
}

common {
}
"""


def run_plan(primitive, facts, probe):  # type: ignore[no-untyped-def]
    """The commands a primitive would run for this probe output."""
    return primitive.plan(facts, probe).commands


# --- packages ---------------------------------------------------------------------------------------

def test_debian_installs_drbd_utils_lvm_and_parted_from_apt() -> None:
    (pkgs,) = package_primitives(DEBIAN)
    assert isinstance(pkgs, Packages) and list(pkgs.names) == ["drbd-utils", "lvm2", "parted"]
    cmds = run_plan(pkgs, DEBIAN, "lists=yes\nfresh=yes\n")
    assert cmds == ["DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "
                    "-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold drbd-utils lvm2 parted"]


def test_el_plan_downloads_the_kernel_tarball_unpacks_and_installs_its_rpms() -> None:
    items = package_primitives(REDHAT)
    assert [i.ident for i in items][:3] == ["file[/root/hive.te]", "packages[selinux-policy-devel]",
                                            "command[cd /root && make -f /usr/share/selinux/devel/Makefile hive.p...]"]
    te, _, semodule, download, unpack, install, tools = items
    assert isinstance(te, File) and "allow kernel_generic_helper_t proc_t:file { open read };" in str(te.content)
    assert isinstance(semodule, Command) and semodule.unless == "semodule -l | grep -qx hive"
    assert isinstance(download, Command) and download.creates == "/root/drbd9-rpm.tar.gz"
    assert download.cmd == (f"curl -fsSL --retry 3 --connect-timeout 30 -o /root/drbd9-rpm.tar.gz.part {KERNEL_URL} "
                            "&& mv -f /root/drbd9-rpm.tar.gz.part /root/drbd9-rpm.tar.gz")
    assert isinstance(unpack, Command) and (unpack.cmd, unpack.creates) == (
        "tar -xzf /root/drbd9-rpm.tar.gz -C /root", "/root/RPMS")
    assert isinstance(install, Command) and install.cmd == "dnf install -y --nogpgcheck /root/RPMS/*/*.rpm"
    assert "rpm -qp --qf '%{NAME}'" in str(install.unless)
    assert isinstance(tools, Packages) and list(tools.names) == ["lvm2", "parted"]
    assert run_plan(tools, REDHAT, "") == ["dnf install -y lvm2 parted"]
    # a fresh host: every guard says run, in this order
    assert run_plan(download, REDHAT, "run=yes\n") == [download.cmd]
    assert run_plan(install, REDHAT, "run=no\nwhy=unless check succeeded\n") == []


def test_el_download_url_and_no_selinux_module_without_selinux() -> None:
    url = "https://example.invalid/drbd-9.2.7.tar.gz"
    items = package_primitives(canned("redhat", selinux="Disabled", kernel="x"), url)
    assert items[0].ident.startswith("command[curl")
    assert isinstance(items[0], Command) and f" {url} " in items[0].cmd


# --- global_common.conf -------------------------------------------------------------------------------

def test_global_common_sets_usage_count_and_minor_count_inside_global() -> None:
    new = edit_global_common(DEBIAN_GLOBAL)
    assert new == DEBIAN_GLOBAL.replace("\tusage-count yes;", "        usage-count no;").replace(
        "\t# minor-count dialog-refresh disable-ip-verification\n",
        "\t# minor-count dialog-refresh disable-ip-verification\n        minor-count 128;\n")
    assert edit_global_common(new) == new


def test_global_common_replaces_an_existing_minor_count_and_copes_without_hints() -> None:
    text = "global {\n  usage-count no;\n  minor-count 64;\n}\n"
    assert edit_global_common(text) == "global {\n        usage-count no;\n        minor-count 128;\n}\n"
    assert edit_global_common("global {\n}\n") == "global {\n        minor-count 128;\n        usage-count no;\n}\n"


def test_global_common_missing_file_is_a_prerequisite_and_existing_file_is_edited() -> None:
    prim = GlobalCommon()
    plan = prim.plan(DEBIAN, "exists=no\nparent=yes\n")
    assert (plan.changed, plan.missing) == (False, "/etc/drbd.d/global_common.conf does not exist "
                                                   "(drbd-utils not installed yet)")
    import base64

    probe = f"stat=644 root root {len(DEBIAN_GLOBAL)}\ncontent={base64.b64encode(DEBIAN_GLOBAL.encode()).decode()}\n"
    plan = prim.plan(DEBIAN, probe)
    assert plan.changed and plan.uploads[0].content.decode() == edit_global_common(DEBIAN_GLOBAL)
    assert "+        minor-count 128;" in plan.diff


def test_config_sysctls_unit_and_helper() -> None:
    items = config_primitives()
    sysctls = [(i.name, i.want) for i in items if isinstance(i, Sysctl)]
    assert sysctls == [("net.ipv4.tcp_rmem", "131072 1048576 16777216"),
                       ("net.ipv4.tcp_wmem", "131072 1048576 16777216")]
    files = {i.path: i for i in items if isinstance(i, File)}
    unit = files["/usr/lib/systemd/system/drbd-resource@.service"]
    assert unit.content == UNIT and unit.notify == ("daemon-reload",)
    assert "ExecStart=/bin/waitdevice %i\nExecStop=/sbin/drbdadm down %i\nRemainAfterExit=yes\n" in UNIT
    assert "RequiredBy=docker.service" in UNIT and "Before=docker.service" in UNIT
    helper = files["/usr/bin/waitdevice"]
    assert (helper.mode, helper.content) == ("0755", WAITDEVICE)


@pytest.mark.skipif(shutil.which("sh") is None, reason="needs sh")
def test_waitdevice_retries_50_times_then_fails(tmp_path: Path) -> None:
    """Run the helper with a drbdadm stub that fails: 50 attempts, exit 1; one that succeeds: exit 0."""
    script = tmp_path / "waitdevice"
    script.write_text(WAITDEVICE.replace("/sbin/drbdadm", str(tmp_path / "drbdadm")).replace("sleep 0.2", ":"))
    (tmp_path / "drbdadm").write_text(f"#!/bin/sh\necho \"$@\" >> {tmp_path}/calls\nexit 1\n")
    (tmp_path / "drbdadm").chmod(0o755)
    r = subprocess.run(["sh", str(script), "r0"], capture_output=True, text=True, check=False)
    assert r.returncode == 1 and (tmp_path / "calls").read_text() == "adjust r0\n" * 50
    (tmp_path / "drbdadm").write_text("#!/bin/sh\nexit 0\n")
    assert subprocess.run(["sh", str(script), "r0"], check=False).returncode == 0


# --- the backing pool ---------------------------------------------------------------------------------

GB = 1024**3 // 512


def test_probe_output_parsing_and_hive_builders_device_choice() -> None:
    out = (f"disk=/dev/sdb {20 * GB}\npart=/dev/sdb 1 2048 1000000\n"
           f"disk=/dev/vdb {GB}\ndisk=/dev/sda {40 * GB}\npart=/dev/sda 2 4096 100\npart=/dev/sda 1 2048 2048\n")
    vg, disks = parse_disks(out)
    assert not vg
    assert [d.path for d in disks] == ["/dev/sdb", "/dev/vdb", "/dev/sda"]
    assert disks[2].partitions == (Partition(1, 2048, 2048), Partition(2, 4096, 100))
    assert pick_disk(disks) == disks[1]  # first without partitions
    assert pick_disk([disks[0], disks[2]]) == disks[0]  # else the first existing
    assert pick_disk([]) is None
    assert parse_disks("vg=yes\n") == (True, [])
    probe = disk_probe("drbdvg", ["/dev/sdb", "/dev/vdb"])
    assert probe.endswith("\nhive_drbd_disks drbdvg /dev/sdb /dev/vdb\n")  # arguments, not pasted into the script


def test_disk_probe_passes_device_names_as_arguments(tmp_path: Path) -> None:
    """A device name with shell syntax in it is a name to test, never code (the probe is a payload file)."""
    marker = tmp_path / "pwned"
    probe = disk_probe("drbd vg", [f"/dev/nope; touch {marker}", "/dev/null"])
    r = subprocess.run(["/bin/sh", "-c", probe], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stdout == ""  # no such VG, no block device
    assert not marker.exists()


def test_partition_and_pool_arithmetic() -> None:
    one = plan_pool(Disk("/dev/vdb", GB))
    assert (one.number, one.start_mib, one.end_mib, one.size_mib, one.pool_mib) == (1, 1, 1023, 1022, 1008)
    twenty = plan_pool(Disk("/dev/sdb", 20 * GB))
    assert (twenty.end_mib, twenty.pool_mib) == (20479, 20464)
    used = plan_pool(Disk("/dev/sda", 40 * GB, (Partition(1, 2048, 2048 * 1000),)))
    assert (used.number, used.start_mib, used.new_label) == (2, 1001, False)
    assert used.part_dev == "/dev/sda2"
    assert PoolPlan("/dev/nvme1n1", 1, 1, 9, True).part_dev == "/dev/nvme1n1p1"
    assert PoolPlan("/dev/disk/azure/scsi1/lun0", 1, 1, 9, True).part_dev == "/dev/disk/azure/scsi1/lun0-part1"
    with pytest.raises(StepFailed, match="too small"):
        plan_pool(Disk("/dev/vdb", 2048 * 20))


def test_pool_commands_are_guarded_and_exact() -> None:
    mkpart, node, vg, pool = pool_primitives(plan_pool(Disk("/dev/vdb", GB)), "drbdvg", "drbdpool", "h")
    table = "parted -s -m /dev/vdb unit s print 2>/dev/null | grep -q '^1:'"
    assert isinstance(mkpart, Command) and mkpart.unless == table
    assert mkpart.cmd == ("parted -s -a none /dev/vdb -- mklabel msdos mkpart primary 1MiB 1023MiB set 1 lvm on || "
                          + table)
    assert isinstance(node, Command) and node.unless == "[ -b /dev/vdb1 ]" and "mknod -m 0660" in node.cmd
    assert isinstance(vg, Command) and (vg.cmd, vg.unless) == ("vgcreate -y drbdvg /dev/vdb1", "vgs drbdvg")
    assert isinstance(pool, Command) and pool.unless == "lvs drbdvg/drbdpool"
    assert 'lvcreate -y -L "${mib}M" --chunksize 1024K --zero n -T "$vg/$pool"' in pool.cmd and "mib=1008" in pool.cmd
    gpt = pool_primitives(plan_pool(Disk("/dev/vdb", GB)), "drbdvg", "drbdpool", "h", "gpt")[0]
    assert isinstance(gpt, Command) and "-- mklabel gpt mkpart primary" in gpt.cmd
    second = pool_primitives(plan_pool(Disk("/dev/sda", 40 * GB, (Partition(1, 2048, 2048000),))), "v", "p", "h")
    assert isinstance(second[0], Command) and "-- mkpart primary 1001MiB 40959MiB set 2 lvm on ||" in second[0].cmd
    # in check mode every guard fails on a fresh host: each command is predicted
    assert [p.plan(DEBIAN, "run=yes\n").changed for p in (mkpart, node, vg, pool)] == [True] * 4


BACKUP = """\
contents = "Text Format Volume Group"
version = 1

drbdvg {
\tid = "wmYPyj-eGL5-IGBn-H57g-uphb-dujf-pt0uVX"
\tseqno = 2
\textent_size = 8192\t\t# 4 Megabytes

\tphysical_volumes {

\t\tpv0 {
\t\t\tdevice = "/dev/vdb1"\t# Hint only
\t\t\tpe_start = 2048
\t\t\tpe_count = 255\t# 1020 Megabytes
\t\t}
\t}


}
"""


def _stub_lvm(tmp_path: Path, activation: str) -> dict[str, str]:
    """lvcreate/vgcfgbackup/vgcfgrestore/lvmconfig stubs that record what the script asks of LVM."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stubs = {
        "lvmconfig": f"echo {activation}",
        "lvcreate": f"echo \"$@\" > {tmp_path}/lvcreate",
        "vgcfgbackup": "printf '%s' \"$BACKUP\" > \"$3\"",
        "vgcfgrestore": f"cp \"$4\" {tmp_path}/restored; echo \"$@\" > {tmp_path}/restore-args",
    }
    for name, body in stubs.items():
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "BACKUP": BACKUP}


@pytest.mark.skipif(shutil.which("awk") is None, reason="needs awk")
def test_thin_pool_is_lvcreate_where_device_mapper_exists(tmp_path: Path) -> None:
    devices = tmp_path / "devices"
    devices.write_text("Block devices:\n253 device-mapper\n")
    env = _stub_lvm(tmp_path, "activation=0")
    cmd = thinpool_command("drbdvg", "drbdpool", 1008, "h", str(devices))
    subprocess.run(["sh", "-ec", cmd], env=env, check=True)
    assert (tmp_path / "lvcreate").read_text() == "-y -L 1008M --chunksize 1024K --zero n -T drbdvg/drbdpool\n"
    assert not (tmp_path / "restored").exists()


@pytest.mark.skipif(shutil.which("awk") is None, reason="needs awk")
def test_thin_pool_metadata_only_without_device_mapper_and_activation(tmp_path: Path) -> None:
    devices = tmp_path / "devices"
    devices.write_text("Block devices:\n7 loop\n259 blkext\n")
    env = _stub_lvm(tmp_path, "activation=0")
    cmd = thinpool_command("drbdvg", "drbdpool", 1008, "h", str(devices))
    r = subprocess.run(["sh", "-ec", cmd], env=env, capture_output=True, text=True, check=True)
    assert "metadata only" in r.stderr and not (tmp_path / "lvcreate").exists()
    assert (tmp_path / "restore-args").read_text().startswith("-q --force -f ")
    text = (tmp_path / "restored").read_text()
    assert text.startswith(BACKUP.rsplit("}", 1)[0])  # everything before the VG's closing brace is kept
    # pool 1008 MiB = 252 extents of 4 MiB; metadata and spare 1 extent each, laid out spare, tmeta, tdata
    assert '\t\tdrbdpool {\n\t\t\tid = "' + lvm_uuid("h/drbdvg/drbdpool") + '"' in text
    assert 'type = "thin-pool"\n\t\t\t\tmetadata = "drbdpool_tmeta"\n\t\t\t\tpool = "drbdpool_tdata"' in text
    assert "chunk_size = 2048" in text and "zero_new_blocks = 0" in text
    for name, count, pe in (("lvol0_pmspare", 1, 0), ("drbdpool_tmeta", 1, 1), ("drbdpool_tdata", 252, 2)):
        block = text.split(f"\t\t{name} {{", 1)[1].split("\t\t}\n", 1)[0]
        assert f"extent_count = {count}\n" in block and f'"pv0", {pe}\n' in block, block
    assert text.count("{") == text.count("}") and text.rstrip().endswith("}")


def test_thin_pool_with_activation_on_uses_lvcreate_even_without_dm_loaded(tmp_path: Path) -> None:
    """dm_mod loads on demand: an empty /proc/devices entry alone never selects the metadata-only path."""
    devices = tmp_path / "devices"
    devices.write_text("Block devices:\n8 sd\n")
    env = _stub_lvm(tmp_path, "activation=1")
    subprocess.run(["sh", "-ec", thinpool_command("vg", "pool", 64, "h", str(devices))], env=env, check=True)
    assert (tmp_path / "lvcreate").read_text() == "-y -L 64M --chunksize 1024K --zero n -T vg/pool\n"


def test_lvm_uuid_shape_and_stability() -> None:
    uid = lvm_uuid("h/drbdvg/drbdpool")
    assert [len(p) for p in uid.split("-")] == [6, 4, 4, 4, 4, 4, 6] and uid.replace("-", "").isalnum()
    assert uid == lvm_uuid("h/drbdvg/drbdpool") != lvm_uuid("h/drbdvg/x")
    with pytest.raises(StepFailed):
        thinpool_command("vg", "bad name", 64, "h")


# --- conditions ----------------------------------------------------------------------------------------

def test_step_condition_and_diskless_hosts() -> None:
    assert drbd_step_wanted({"hive_mirrored_disk_size": 20, "hive_provider": "aws"})
    assert drbd_step_wanted({"hive_provider": "prepared"}) and drbd_step_wanted({"hive_provider": "kickstart"})
    assert not drbd_step_wanted({"hive_provider": "docker"})  # separate repository: no mirrored disk
    assert has_mirrored_device({}) and not has_mirrored_device({"hive_no_mirrored_device": True})
    assert not has_mirrored_device({"hive_no_mirrored_devices": True})
    assert disk_specs(None)[0]["vgname"] == "drbdvg" and disk_specs(None)[0]["device_order"][4] == "/dev/vdb"
    with pytest.raises(StepFailed):
        disk_specs([{"vgname": "x"}])


# --- the task's flow with a fake context (probe output in, primitive lists out) ---------------------------

def drbd_host(probes: list[str], check: bool = False, host_vars: dict[str, Any] | None = None,
              changes: bool = True) -> FakeHost:
    """`probes` answer the disk probes in order; device-node commands run (`changes`) or are in place."""
    me = stage_host("p-hive0.x", "servers", ip="10.0.0.4")
    return FakeHost("p-hive0.x", DEBIAN, host_vars=host_vars, check=check, answer=lambda _c: probes.pop(0),
                    guard=lambda _c: changes, stage_hosts={"p-hive0.x": me})


def test_flow_fresh_disk_gets_partition_node_vg_and_pool() -> None:
    from hive_nornir.tasks.storage.drbd import drbd

    ctx = drbd_host([f"disk=/dev/vdb {GB}\n"])
    drbd(ctx)
    packages, config, pool = ctx.result.ensured
    assert packages == ["packages[drbd-utils,lvm2,parted]"]
    assert config[0].startswith("drbd-global[") and config[-3] == "file[/usr/bin/waitdevice]"
    assert config[-2].startswith("rules[/etc/iptables/rules.v4:# HIVE-BUILDER MANAGED BLOCK for drbd]")
    assert "allow drbd" in config[-1]
    assert pool[1:] == ["command[device node /dev/vdb1 (partition 1 of /dev/vdb)]",
                        "command[vgcreate -y drbdvg /dev/vdb1]",
                        "command[thin pool drbdvg/drbdpool: 1008 MiB, chunk 1 MiB, no zeroing]"]


def test_flow_existing_vg_and_diskless_hosts_touch_no_disk() -> None:
    from hive_nornir.tasks.storage.drbd import drbd

    ctx = drbd_host([f"vg=yes\ndisk=/dev/vdb {GB}\npart=/dev/vdb 1 2048 2093056\n"], changes=False)
    drbd(ctx)
    ensured = ctx.result.ensured
    assert ensured[2] == ["command[device node /dev/vdb1 (partition 1 of /dev/vdb)]"] and len(ensured) == 3
    diskless = drbd_host([], host_vars={"hive_no_mirrored_device": True})
    drbd(diskless)
    assert len(diskless.result.ensured) == 2  # packages and config only, the disk is never probed
    with pytest.raises(StepFailed, match="none of /dev/sdb exists"):
        drbd(drbd_host([""], host_vars={"hive_mirrored_disk_devices": [
            {"device_order": ["/dev/sdb"], "vgname": "v", "poolname": "p"}]}))


def test_flow_check_mode_stops_after_predicting_missing_nodes() -> None:
    """Whether the VG is on a node-less partition is unknown until the node exists: predict, then stop."""
    from hive_nornir.tasks.storage.drbd import drbd

    ctx = drbd_host([f"disk=/dev/vdb {GB}\npart=/dev/vdb 1 2048 2093056\n"], check=True)
    drbd(ctx)
    assert ctx.result.ensured[-1] == ["command[device node /dev/vdb1 (partition 1 of /dev/vdb)]"]
    # a real run re-probes after making the node and then finds the VG
    probes = [f"disk=/dev/vdb {GB}\npart=/dev/vdb 1 2048 2093056\n", "vg=yes\n"]
    real = drbd_host(probes)
    drbd(real)
    assert len(real.result.ensured) == 3 and probes == []
