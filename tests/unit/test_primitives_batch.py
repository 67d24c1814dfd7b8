"""Every primitive's probe batched into ONE real /bin/sh script, as the engine runs a step: they must coexist."""

from __future__ import annotations

import subprocess
from pathlib import Path

from hive_nornir.engine.probe import batch_script, split_output
from hive_nornir.facts import canned
from hive_nornir.primitives.base import Primitive
from hive_nornir.primitives.command import Command
from hive_nornir.primitives.filesystem import Directory, Symlink
from hive_nornir.primitives.lines import BlockInFile, LineInFile
from hive_nornir.primitives.packages import Packages
from hive_nornir.primitives.service import Service
from hive_nornir.primitives.sysctl import Sysctl
from hive_nornir.primitives.users import AuthorizedKeys, Group, User


def test_one_script_for_all_probes(tmp_path: Path) -> None:
    facts = canned("debian")
    conf = tmp_path / "app.conf"
    conf.write_text("a = 1\n")
    (tmp_path / "link").symlink_to("/etc/hostname")
    items: list[Primitive] = [
        Packages(["coreutils"]),
        Service("hive-no-such-unit", state="started"),
        Group("root", gid=0),
        User("root", uid=0, shell=None),
        AuthorizedKeys("hive-no-such-user", ["ssh-ed25519 AAAA x"]),
        Sysctl("kernel.ostype", "Linux", persist_file=None),
        LineInFile(str(conf), "a = 1"),
        BlockInFile(str(conf), state="absent"),
        Directory(str(tmp_path)),
        Symlink(str(tmp_path / "link"), "/etc/hostname"),
        Command("false", creates=str(conf)),
    ]
    script, marker = batch_script(items, facts)
    done = subprocess.run(["/bin/sh", "-c", script], capture_output=True, text=True, timeout=60)
    outputs = split_output(done.stdout, marker, len(items))
    plans = {item.ident: item.plan(facts, out) for item, out in zip(items, outputs, strict=True)}
    changed = sorted(ident for ident, plan in plans.items() if plan.changed)
    missing = sorted(ident for ident, plan in plans.items() if plan.missing)
    assert changed == []  # everything else is already in its desired state on this host
    assert missing == ["authorized_keys[hive-no-such-user]", "service[hive-no-such-unit.service]"]
