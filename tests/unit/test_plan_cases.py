"""The fixture-table helper itself: a row that differs fails, and says how, as wanted against got."""

from __future__ import annotations

import pytest
from plan_cases import RH, Case, assert_text, check_case, ids, on

from hive_nornir.facts import canned
from hive_nornir.primitives.base import Upload
from hive_nornir.primitives.packages import Packages
from hive_nornir.primitives.users import AuthorizedKeys

MISSING_CURL = "pkg=nginx installed\npackage curl is not installed"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA alice@laptop"


def failure(case: Case) -> str:
    with pytest.raises(pytest.fail.Exception) as info:
        check_case(case)
    return str(info.value)


def test_a_matching_row_passes_and_returns_the_plan() -> None:
    plan = check_case(Case("ok", Packages(["nginx", "curl"]), MISSING_CURL, facts=RH, commands=["dnf install -y curl"]))
    assert plan.summary == "install curl"


def test_a_wrong_command_prints_wanted_against_got() -> None:
    text = failure(Case("wrong", Packages(["nginx", "curl"]), MISSING_CURL, facts=RH,
                        commands=["dnf install -y curl nginx"]))
    assert text.startswith("wrong: packages[nginx,curl] planned something else (- wanted, + got)\n--- wanted\n+++ got")
    assert "\n-  - dnf install -y curl nginx\n+  - dnf install -y curl\n" in text
    assert "\n changed: True\n" in text  # the fields that agree are shown too, as context


def test_a_row_that_leaves_the_commands_out_says_no_change_and_fails() -> None:
    text = failure(Case("silent", Packages(["nginx", "curl"]), MISSING_CURL, facts=RH))
    assert "\n-changed: False\n-commands: []\n+changed: True\n+commands:\n+  - dnf install -y curl\n" in text


def test_summary_diff_error_and_missing_are_compared_exactly() -> None:
    assert "-summary: 'install'\n+summary: 'install curl'" in failure(
        Case("s", Packages(["nginx", "curl"]), MISSING_CURL, facts=RH, commands=["dnf install -y curl"],
             summary="install"))
    text = failure(Case("m", Packages(["curl"]), "", facts=canned("debian", pkg_manager=""),
                        missing="no supported package manager"))
    assert "-missing: 'no supported package manager'\n+missing: 'no supported package manager (apt" in text


def test_an_upload_is_compared_with_its_content_and_attributes() -> None:
    keys = AuthorizedKeys("deploy", [KEY])
    out = "home=/home/deploy\ngroup=ops\nhomedir=yes\nsshdir=700 deploy ops\nkeys=600 deploy ops\ncontent="
    wanted = Upload("/home/deploy/.ssh/authorized_keys", f"{KEY}\n".encode(), mode="0600", owner="deploy",
                    group="ops", backup=False)
    check_case(Case("keys", keys, out, uploads=[wanted]))
    text = failure(Case("keys-mode", keys, out, uploads=[Upload(wanted.path, wanted.content, mode="0644",
                                                                owner="deploy", group="ops", backup=False)]))
    assert "-  - /home/deploy/.ssh/authorized_keys mode=0644" in text
    assert "+  - /home/deploy/.ssh/authorized_keys mode=0600" in text
    text = failure(Case("keys-content", keys, out, uploads=[Upload(wanted.path, b"other\n", mode="0600",
                                                                   owner="deploy", group="ops", backup=False)]))
    assert "-    | other\n+    | ssh-ed25519" in text


def test_long_commands_are_broken_so_the_diff_points_at_the_part() -> None:
    from hive_nornir.primitives.sysctl import Sysctl

    wrong = ("mkdir -p /etc/sysctl.d; if grep -Eq 'x' /etc/sysctl.d/99-hive.conf 2>/dev/null; then sed -i -E 's|x|y|' "
             "/etc/sysctl.d/99-hive.conf; fi")
    text = failure(Case("long", Sysctl("net.core.somaxconn", "4096"), "current=4096\npersisted=net.core.somaxconn = 1",
                        commands=[wrong]))
    assert "\n   - mkdir -p /etc/sysctl.d; \n" in text  # the same first part is context, not a change


def test_ids_must_be_unique_and_on_names_the_family() -> None:
    rows = on([canned("debian"), RH], Case("x", Packages(["curl"]), ""))
    assert ids(rows) == ["x-debian12", "x-almalinux9.4"]
    with pytest.raises(AssertionError, match="duplicate case ids"):
        ids([*rows, rows[0]])


def test_assert_text_prints_the_lines_that_differ() -> None:
    assert_text("a\nb\n", "a\nb\n")
    with pytest.raises(pytest.fail.Exception, match=r"(?s)config differs.*-b\n\+c"):
        assert_text("a\nb\n", "a\nc\n", "config")
