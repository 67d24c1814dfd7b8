"""drbd on real hosts: the pool on the provider's loop-device disk, idempotent, check mode that predicts.

This kernel has no device-mapper (lab.md 7) and the lab image sets LVM `activation = 0`, so the thin pool
exists as LVM metadata only (no LV block devices), and DRBD is checked with `drbdadm sh-nop` (no kernel module,
lab.md 6). Partition, PV and VG are real, on a real partition of the loop disk.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from typing import Any

import pytest

from hive_nornir.api import Hive
from hive_nornir.engine.outcome import CHANGED, OK
from hive_nornir.engine.runbook import Runbook, Step
from hive_nornir.report.run_report import EXIT_OK
from hive_nornir.tasks.net.iptables import iptables
from hive_nornir.tasks.storage.drbd import drbd, drbd_step_wanted

pytestmark = pytest.mark.lab

RUNBOOK = Runbook("drbd-lab", (
    Step("iptables", iptables, tags=("iptables",)),  # drbd opens its rule set in the HIVE-SERVICE chain
    Step("drbd", drbd, when=drbd_step_wanted, tags=("drbd",)),
))
HIVE, DISKLESS, REPO = "p-hive0.hdrbd", "p-hive1.hdrbd", "p-hive2.hdrbd"
WATCH = ("parted -s -m /dev/vdb unit s print 2>&1; ls /dev/vdb* 2>&1; vgs drbdvg 2>&1; "
         "dpkg-query -W drbd-utils 2>&1; cat /proc/sys/net/ipv4/tcp_rmem; ls /usr/bin/waitdevice 2>&1")


def losetup_of(path: str) -> str:
    """The controller's view of the loop attachments of one file."""
    return subprocess.run(["losetup", "-n", "-O", "NAME", "-j", path], capture_output=True, text=True,
                          check=True).stdout.strip()


def test_drbd_pool_on_loop_disk(make_lab: Callable[..., Any]) -> None:
    """check mode predicts and changes nothing; the run builds partition, VG, thin pool and config;
    the second run and check mode then find nothing to do; destroy detaches the loop disk."""
    lab = make_lab("hdrbd", "10.85.0.0/24", 3, separate=True, stage_extra="mirrored_disk_size: 1")
    img = str(lab.context_dir / "disks" / "p-hive0.img")
    loop = losetup_of(img)
    assert loop.startswith("/dev/loop"), loop
    assert not (lab.context_dir / "disks" / "p-hive2.img").exists()  # the repository has no mirrored disk
    rc, out = lab.docker_exec(HIVE, "blockdev --getsize64 /dev/vdb")
    assert (rc, out.strip()) == (0, str(1024**3)), out
    # a diskless DRBD node from now on: drbd-utils and config, but no pool even though it has a /dev/vdb
    (lab.root / "inventory" / "host_vars").mkdir()
    (lab.root / "inventory" / "host_vars" / f"{DISKLESS}.yml").write_text("hive_no_mirrored_device: True\n")
    hive = Hive(lab.root, stage="private")

    before = lab.docker_exec(HIVE, WATCH)
    t0 = time.monotonic()
    check = hive.run(RUNBOOK, check=True)
    t_check = time.monotonic() - t0
    assert check.exit_code == EXIT_OK, check.text()
    assert lab.docker_exec(HIVE, WATCH) == before
    # the repository has no mirrored_disk_size
    assert sorted(o.host for o in check.outcomes if o.step == "drbd") == [HIVE, DISKLESS]
    predicted = " | ".join(what for host, _, what, _ in check.changes() if host == HIVE)
    for part in ("install drbd-utils", "mkpart primary 1MiB 1023MiB set 1 lvm on", "device node /dev/vdb1",
                 "vgcreate -y drbdvg /dev/vdb1", "thin pool drbdvg/drbdpool: 1008 MiB", "sysctl net.ipv4.tcp_rmem",
                 "create /usr/bin/waitdevice"):
        assert part in predicted, predicted
    assert "(assumed)" in predicted  # global_common.conf comes with the package the run would install
    assert "vgcreate" not in " | ".join(what for host, _, what, _ in check.changes() if host == DISKLESS)

    t0 = time.monotonic()
    first = hive.run(RUNBOOK)
    t_first = time.monotonic() - t0
    assert first.exit_code == EXIT_OK, first.text()
    mine = [o for o in first.outcomes if o.host == HIVE and o.step != "iptables"]
    assert [(o.step, o.status) for o in mine] == [("drbd", CHANGED), ("handlers", OK)]
    assert mine[1].handlers_run == ["daemon-reload"]  # the new unit file is known to systemd
    rc, out = lab.docker_exec(DISKLESS, "drbdadm sh-nop 2>/dev/null; echo rc=$?; "
                                        "parted -s -m /dev/vdb print 2>/dev/null | tail -1 | cut -d: -f6; "
                                        "vgs 2>/dev/null | wc -l")
    assert out.split("\n")[:3] == ["rc=0", "unknown", "0"], out  # no partition table, no VG

    # the partition: number 1 from 1 MiB to the disk's last full MiB, lvm flag, node made without udev
    rc, out = lab.docker_exec(HIVE, "parted -s -m /dev/vdb unit s print")
    assert "1:2048s:2095103s:2093056s:::lvm;" in out.splitlines(), out
    rc, out = lab.docker_exec(HIVE, "stat -c '%F %t' /dev/vdb1")
    assert (rc, out.strip()) == (0, "block special file 103"), out  # major 259 (blkext), hex 103
    rc, out = lab.docker_exec(HIVE, "pvs --noheadings -o pv_name,vg_name 2>/dev/null")
    assert out.split() == ["/dev/vdb1", "drbdvg"], out
    # the thin pool: (1022-8)*8192//8193//16*16 = 1008 MiB, chunk 1 MiB; metadata only on this kernel
    rc, out = lab.docker_exec(HIVE, "lvs --noheadings --units m -o lv_name,lv_attr,lv_size,chunk_size "
                                    "drbdvg/drbdpool 2>/dev/null")
    name, attr, size, chunk = out.split()
    assert (name, attr[0], size, chunk) == ("drbdpool", "t", "1008.00m", "1.00m"), out
    rc, out = lab.docker_exec(HIVE, "grep -cw device-mapper /proc/devices; "
                                    "lvmconfig --type full global/activation 2>/dev/null")
    assert out.split() == ["0", "activation=0"], out  # why the pool is metadata only here
    # config: global_common.conf lines, sysctls, unit, helper; drbdadm accepts the whole configuration
    rc, out = lab.docker_exec(HIVE, "grep -E '^ *(usage-count|minor-count) ' /etc/drbd.d/global_common.conf")
    assert [ln.strip() for ln in out.splitlines()] == ["usage-count no;", "minor-count 128;"], out
    rc, out = lab.docker_exec(HIVE, "drbdadm dump all 2>/dev/null | grep -E 'usage-count|minor-count'; "
                                    "drbdadm sh-nop 2>&1 | grep -v modinfo; echo rc=$?")
    assert "usage-count no;" in out and "minor-count 128;" in out, out
    rc, out = lab.docker_exec(HIVE, "drbdadm sh-nop >/dev/null 2>&1; echo $?")
    assert out.strip() == "0", out
    for key in ("tcp_rmem", "tcp_wmem"):
        rc, out = lab.docker_exec(HIVE, f"cat /proc/sys/net/ipv4/{key}; grep {key} /etc/sysctl.d/99-hive.conf")
        assert out.split("\n")[:2] == ["131072\t1048576\t16777216", f"net.ipv4.{key} = 131072 1048576 16777216"]
    rc, out = lab.docker_exec(HIVE, "systemctl cat drbd-resource@r0.service | grep -E '^Exec'; "
                                    "stat -c %a /usr/bin/waitdevice")
    assert out.split("\n")[:3] == ["ExecStart=/bin/waitdevice %i", "ExecStop=/sbin/drbdadm down %i", "755"], out

    t0 = time.monotonic()
    second = hive.run(RUNBOOK)
    t_second = time.monotonic() - t0
    assert second.exit_code == EXIT_OK and second.changed == 0, second.changes()
    assert {o.status for o in second.outcomes} == {OK}
    after = hive.run(RUNBOOK, check=True)
    assert after.changed == 0, after.changes()
    print(f"drbd timings: check {t_check:.1f} s, first run {t_first:.1f} s, second run {t_second:.1f} s, "
          f"lab build {lab.build_seconds:.1f} s")

    # a rebuild reuses the attachment; a restarted host (fresh /dev, no udev) gets its partition node back
    assert lab.rebuild()["changed"] is False
    assert losetup_of(img) == loop
    subprocess.run(["docker", "stop", "-t", "10", lab.container(HIVE)], check=True, capture_output=True)
    assert lab.rebuild()["hosts"][HIVE] == ["started"]
    assert losetup_of(img) == loop
    assert lab.docker_exec(HIVE, "ls /dev/vdb1")[0] != 0
    restart = hive.run(RUNBOOK)
    assert restart.exit_code == EXIT_OK, restart.text()
    assert [what for _, _, what, _ in restart.changes()] == ["device node /dev/vdb1 (partition 1 of /dev/vdb)"]
    rc, out = lab.docker_exec(HIVE, "lvs --noheadings -o lv_name drbdvg 2>/dev/null")
    assert out.split() == ["drbdpool"], out
    assert hive.run(RUNBOOK).changed == 0

    # the controller lost the attachment (reboot): build re-attaches the file and tells the kernel its
    # partitions (partx: this kernel has no partition-table parsers), so the pool is found again
    subprocess.run(["docker", "stop", "-t", "10", lab.container(HIVE)], check=True, capture_output=True)
    subprocess.run(["losetup", "-d", loop], check=True)
    assert "disk_attached" in lab.rebuild()["hosts"][HIVE]
    loop = losetup_of(img)
    reattached = hive.run(RUNBOOK)
    assert reattached.exit_code == EXIT_OK, reattached.text()
    assert "vgcreate" not in " ".join(what for _, _, what, _ in reattached.changes())
    rc, out = lab.docker_exec(HIVE, "lvs --noheadings -o lv_name,lv_size drbdvg 2>/dev/null")
    assert out.split() == ["drbdpool", "1008.00m"], out
    assert hive.run(RUNBOOK).changed == 0

    # destroy detaches the loop device and deletes the file
    lab.provider.destroy(lab.site, lab.stage, lab.context_dir)
    assert not (lab.context_dir / "disks").exists()
    out = subprocess.run(["losetup", "-l", "-n", "-O", "BACK-FILE"], capture_output=True, text=True).stdout
    assert img not in out, out
