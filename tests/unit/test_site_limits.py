"""Hostile YAML (issue 10 items 9-10): refused with exit 2 and file:line, in bounded time, no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from hive_nornir.site import SiteError, load_site
from hive_nornir.site.marked import MAX_BYTES, MAX_DEPTH, MAX_NODES

SITE = """\
plugin: hive_inventory
name: t
stages:
  private:
    provider: docker
    cidr: 10.99.0.0/24
"""
# A hang on the old code must end as a failure, not hold the suite: a bound, not a timed assertion.
HANG_GUARD = 120


def project(tmp_path: Path, hive: str = SITE, all_yml: str | None = None) -> Path:
    inv = tmp_path / "inventory"
    (inv / "group_vars").mkdir(parents=True)
    (inv / "hive.yml").write_text(hive)
    if all_yml is not None:
        (inv / "group_vars" / "all.yml").write_text(all_yml)
    return inv / "hive.yml"


def cli(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hive_nornir", "-r", str(root), *args],
                          capture_output=True, text=True, timeout=HANG_GUARD)


def billion_laughs(levels: int = 30, jinja: bool = True) -> str:
    """9**levels values from a few hundred bytes; a Jinja marker at the bottom makes the scan walk it all."""
    leaf = '["lol", "{{ x }}"]' if jinja else '["lol"]'
    lines = [f"a0: &a0 {leaf}"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def test_billion_laughs_in_group_vars_is_refused_with_its_line(tmp_path: Path) -> None:
    project(tmp_path, all_yml=billion_laughs())
    done = cli(tmp_path, "inventory")
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    # a1 holds 9 * 2 values ... a6 is the first level beyond MAX_NODES (9**5 * 2 + ... > 100000): line 6
    where = f"{tmp_path / 'inventory' / 'group_vars' / 'all.yml'}:6:"
    assert f"{where} YAML document expands through aliases to more than {MAX_NODES} values" in done.stderr


def test_billion_laughs_in_hive_yml_is_refused(tmp_path: Path) -> None:
    path = project(tmp_path, hive=SITE + "x-bomb:\n" + "".join(f"  {line}\n" for line in
                                                                 billion_laughs().splitlines()))
    with pytest.raises(SiteError) as info:
        load_site(path)
    (issue,) = info.value.issues
    assert (issue.file, issue.line) == (path, 13)
    assert "expands through aliases" in issue.problem


def test_merge_key_bomb_is_refused(tmp_path: Path) -> None:
    """`<<:` merges are expanded by PyYAML itself while constructing: they count too."""
    lines = ["m0: &m0 {k: v}"] + [f"m{i}: &m{i} {{<<: [{', '.join([f'*m{i - 1}'] * 9)}]}}" for i in range(1, 30)]
    path = project(tmp_path, all_yml="\n".join(lines) + "\n")
    with pytest.raises(SiteError) as info:
        load_site(path)
    assert "expands through aliases" in str(info.value)


def test_recursive_alias_is_refused(tmp_path: Path) -> None:
    path = project(tmp_path, all_yml="ok: 1\nloop: &a [1, *a]\n")
    with pytest.raises(SiteError) as info:
        load_site(path)
    (issue,) = info.value.issues
    assert issue.line == 2 and "recursive document" in issue.problem


def test_shared_anchors_within_the_limits_still_load(tmp_path: Path) -> None:
    """Anchors are ordinary YAML: a site reusing a mapping a few times must keep working."""
    path = project(tmp_path, all_yml="base: &b {a: 1, b: [1, 2]}\nx: *b\ny: {<<: *b, c: 3}\n")
    site = load_site(path)
    assert site.group_vars["all"]["y"] == {"a": 1, "b": [1, 2], "c": 3}
    project(tmp_path / "wide", all_yml=billion_laughs(levels=5, jinja=False))  # 9**4 leaves, < MAX_NODES
    assert len(load_site(tmp_path / "wide" / "inventory" / "hive.yml").group_vars["all"]["a4"]) == 9


@pytest.mark.parametrize("text, line", [
    ("x: " + "[" * 100_000 + "]" * 100_000 + "\n", 1),  # 100k-deep flow list
    ("x: " + "{a: " * 5_000 + "1" + "}" * 5_000 + "\n", 1),  # 5k-deep flow mapping
    ("".join("  " * i + "a:\n" for i in range(200)) + "  " * 200 + "b: 1\n", MAX_DEPTH),  # block style
])
def test_deep_nesting_is_exit_2_without_traceback(tmp_path: Path, text: str, line: int) -> None:
    project(tmp_path, all_yml=text)
    done = cli(tmp_path, "inventory")
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and "RecursionError" not in done.stderr
    where = f"{tmp_path / 'inventory' / 'group_vars' / 'all.yml'}:{line}:"
    assert f"{where} YAML document nests deeper than {MAX_DEPTH} levels" in done.stderr


def test_deep_nesting_through_an_alias_chain(tmp_path: Path) -> None:
    """Each line is shallow, but every anchor wraps the previous one: construction would recurse 200 deep."""
    lines = ["l0: &l0 [1]"] + [f"l{i}: &l{i} [*l{i - 1}]" for i in range(1, 200)]
    path = project(tmp_path, all_yml="\n".join(lines) + "\n")
    with pytest.raises(SiteError) as info:
        load_site(path)
    (issue,) = info.value.issues
    assert "nests deeper than 64 levels through aliases" in issue.problem and issue.line == MAX_DEPTH


def test_oversized_file_is_refused_unread(tmp_path: Path) -> None:
    """A 5k-deep block mapping is 25 MB of indentation: the size limit stops it before parsing."""
    path = project(tmp_path, all_yml="x: '" + "a" * MAX_BYTES + "'\n")
    with pytest.raises(SiteError) as info:
        load_site(path)
    (issue,) = info.value.issues
    assert issue.file == path.parent / "group_vars" / "all.yml"
    assert f"is larger than {MAX_BYTES} bytes" in issue.problem
