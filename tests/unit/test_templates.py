"""Templates: the project's templates/ first, then hive_nornir's; rendered when the step runs; errors name the cause."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hive_nornir.api import Hive
from hive_nornir.engine.context import HostContext
from hive_nornir.primitives.file import Template, TemplateError, render
from hive_nornir.primitives.templates import package_templates, project_templates

HOSTS = ("p-hive0.t", "p-hive1.t")
PACKAGED = "logs/rsyslog-client.conf.j2"


def project(root: Path, templates: dict[str, str]) -> Hive:
    """A 2-host docker stage recorded at a port nothing listens on (no test here connects), with templates/."""
    (root / "inventory").mkdir(parents=True)
    (root / "inventory" / "hive.yml").write_text("plugin: hive_inventory\nname: t\nstages:\n  private:\n"
                                                 "    provider: docker\n    cidr: 10.0.0.0/24\n"
                                                 "    number_of_hosts: 2\n    separate_repository: false\n")
    (root / ".hive" / "private").mkdir(parents=True)
    (root / ".hive" / "private" / "state.json").write_text(json.dumps(
        {"provider": "docker", "hosts": {h: {"address": "127.0.0.1", "port": 9, "user": "root"} for h in HOSTS}}))
    for name, text in templates.items():
        (root / "templates" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "templates" / name).write_text(text)
    return Hive(root)


def test_project_template_wins_over_the_packaged_one_of_the_same_name(tmp_path: Path) -> None:
    assert (package_templates() / PACKAGED).is_file()
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "rsyslog-client.conf.j2").write_text("# ours, for {{ target }}\n")
    packaged = render(PACKAGED, tls_files=False, ca_file="", cert_file="", key_file="", target="repo", port=1,
                      queue_size=1)
    assert "# ours" not in packaged
    with project_templates([tmp_path]):
        assert render(PACKAGED, target="repo") == "# ours, for repo\n"
    assert render(PACKAGED, tls_files=False, ca_file="", cert_file="", key_file="", target="repo", port=1,
                  queue_size=1) == packaged  # outside the block: the package's again


def test_a_step_renders_with_its_project_templates_even_when_made_before_the_run(tmp_path: Path) -> None:
    """A Template made in a notebook cell before hive.run_task is looked up in that Hive's project."""
    hive = project(tmp_path, {"motd.j2": "welcome to {{ site }}\n", PACKAGED: "overridden\n"})
    motd = Template("/etc/motd", "motd.j2", {"site": "t"})
    seen: dict[str, tuple[str, str]] = {}

    def look(ctx: HostContext) -> None:  # no connection: reads rendered content only
        seen[ctx.name] = (motd.data.decode(), render(PACKAGED))

    report = hive.run_task(look, check=True)
    assert report.exit_code == 0, report.text()
    assert seen == {h: ("welcome to t\n", "overridden\n") for h in HOSTS}
    with pytest.raises(TemplateError, match=r"template 'motd.j2' not found; looked in .*hive_nornir/templates"):
        _ = Template("/etc/motd", "motd.j2", {"site": "t"}).data  # outside a run: the package's only


def test_template_errors_fail_the_host_with_the_template_and_the_cause(tmp_path: Path) -> None:
    hive = project(tmp_path, {"bad.j2": "{% if %}\n", "needs.j2": "{{ who }}\n"})

    def use(name: str) -> str:
        def task(ctx: HostContext) -> None:
            _ = Template("/etc/x", name).data
        report = hive.run_task(task, check=True, limit="p-hive0")
        (row,) = report.summaries()
        assert row.status == "failed"
        return row.error

    assert use("needs.j2") == "template needs.j2: 'who' is undefined"
    assert use("bad.j2").startswith(f"template bad.j2: {tmp_path / 'templates' / 'bad.j2'}:1: ")
    assert use("gone.j2") == (f"template 'gone.j2' not found; looked in {tmp_path / 'templates'}, "
                              f"{package_templates()}")


def test_hive_render_previews_per_host_with_nornir_jinja2(tmp_path: Path) -> None:
    """nornir_jinja2's template_file with our environment: `host` is the Nornir host, as its users expect."""
    hive = project(tmp_path, {"hosts.j2": "{{ host.name }} {{ host['hive_private_ip'] }} {{ note }}\n"})
    assert hive.render("hosts.j2", note="x") == {"p-hive0.t": "p-hive0.t 10.0.0.4 x\n",
                                                 "p-hive1.t": "p-hive1.t 10.0.0.5 x\n"}
    assert hive.render("hosts.j2", limit="p-hive1", note="y") == {"p-hive1.t": "p-hive1.t 10.0.0.5 y\n"}
    with pytest.raises(TemplateError, match=r"p-hive0\.t: template hosts\.j2: 'note' is undefined"):
        hive.render("hosts.j2", limit="p-hive0")
