"""base, environment part: proxy and pip settings in /etc/environment, the locale, cloud-init's hostname."""

from __future__ import annotations

from collections.abc import Iterable

from hive_nornir.facts import Facts
from hive_nornir.primitives.base import Primitive, q
from hive_nornir.primitives.command import Command
from hive_nornir.primitives.lines import LineInFile
from hive_nornir.primitives.packages import Packages

ENVIRONMENT = "/etc/environment"
DEFAULT_PROXY_PORT = 3128


def proxy_url(proxy: str, private_ip: str, port: int | None) -> str:
    """A full URL is used as given; hive-builder's `host:port` form means the forwarded port on the host."""
    if proxy.startswith(("http://", "https://")):
        return proxy
    return f"http://{private_ip}:{port or DEFAULT_PROXY_PORT}"


def environment_line(key: str, value: str) -> LineInFile:
    """One `KEY=value` line of /etc/environment, replaced in place when the value changes."""
    return LineInFile(path=ENVIRONMENT, regexp=rf"^{key}=", line=f"{key}={value}")


def proxy_primitives(url: str, no_proxy_hosts: Iterable[str], ca_anchor: str) -> list[Primitive]:
    """http(s)_proxy in both spellings, no_proxy for the stage's own servers, pip trusting the stage CA."""
    no_proxy = ",".join(["localhost", "127.0.0.1", *no_proxy_hosts])
    items: list[Primitive] = [environment_line(key, url)
                              for key in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY")]
    items += [environment_line("no_proxy", no_proxy), environment_line("NO_PROXY", no_proxy),
              environment_line("PIP_CERT", ca_anchor)]
    return items


def pip_index_primitives(index_url: str, trusted_host: str | None) -> list[Primitive]:
    """PIP_INDEX_URL (and PIP_TRUSTED_HOST) for every login, as hive-builder writes them."""
    items: list[Primitive] = [environment_line("PIP_INDEX_URL", index_url)]
    if trusted_host:
        items.append(environment_line("PIP_TRUSTED_HOST", trusted_host))
    return items


def locale_names(locale: str) -> tuple[str, str]:
    """`ja_JP.utf8` -> (`ja_JP.utf8`, `ja_JP.UTF-8 UTF-8`): LANG value and its /etc/locale.gen line."""
    value = locale.split("=", 1)[1] if locale.startswith("LANG=") else locale
    name, _, codeset = value.partition(".")
    charset = "UTF-8" if codeset.lower().replace("-", "") in ("utf8", "") else codeset.upper()
    return value, f"{name}.{charset} {charset}"


def locale_primitives(facts: Facts, locale: str) -> list[Primitive]:
    """Generate the locale when the OS needs it (Debian) or install its langpack (EL), then make it LANG."""
    value, gen_line = locale_names(locale)
    short = value.split("_")[0].split(".")[0]
    available = value.split(".")[0] + "." + ("utf8" if "UTF-8" in gen_line else gen_line.split()[1].lower())
    if facts.is_redhat:
        return [Packages(names=[f"langpacks-{short}"]),
                LineInFile(path="/etc/locale.conf", regexp=r"^LANG=", line=f"LANG={value}")]
    return [
        Packages(names=["locales"]),
        LineInFile(path="/etc/locale.gen", regexp=rf"^#?\s*{gen_line.split()[0].replace('.', '[.]')}\s",
                   line=gen_line),
        Command(cmd="locale-gen", unless=f"locale -a | grep -qix {q(available)}"),
        LineInFile(path="/etc/default/locale", regexp=r"^LANG=", line=f"LANG={value}"),
    ]


def cloud_init_primitives(facts: Facts) -> list[Primitive]:
    """Under cloud-init the short host name must survive a reboot: preserve_hostname: true."""
    if not facts.cloud_init:
        return []
    return [LineInFile(path="/etc/cloud/cloud.cfg", regexp=r"^preserve_hostname:", line="preserve_hostname: true")]
