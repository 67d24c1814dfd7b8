"""tls-certificate: each host's key and CSR made on the host, signed by the stage CA on the controller, installed
with the CA as a trust anchor; signed again only when the installed cert no longer fits (key, CA, SANs, expiry)."""

from __future__ import annotations

from dataclasses import dataclass

from hive_nornir.ca import (
    CAError,
    HostIdentity,
    StageCA,
    ca_problem,
    cert_problem,
    csr_matches_key,
    ensure_ca,
    existing_ca,
    sign_csr,
)
from hive_nornir.engine.errors import StepFailed
from hive_nornir.engine.protocols import TaskContext
from hive_nornir.facts import Facts
from hive_nornir.pki_paths import (
    TLS_DIR,
    ca_anchor_path,
    ca_trust_update_command,
    controller_ca_dir,
    host_cert_path,
    host_csr_path,
    host_key_path,
)
from hive_nornir.primitives.base import Primitive, q
from hive_nornir.primitives.command import Command
from hive_nornir.primitives.file import File
from hive_nornir.primitives.filesystem import Directory
from hive_nornir.primitives.packages import Packages
from hive_nornir.primitives.probes import argv

KEY_BITS = 4096  # hive-builder: openssl req -newkey rsa:4096
TRUST_BUNDLE = {"debian": "/etc/ssl/certs/ca-certificates.crt",
                "redhat": "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem"}
CA_SHARED = "tls-certificate:ca"  # ctx.shared key: the CA loaded (or created) once per run
MARK = "==hive-tls=="
DOCKER_RESTART = "restart:docker"


def subject(host: str) -> str:
    """hive-builder's CSR subject: `/DC=<name parts reversed>/CN=<inventory name>`."""
    return "".join(f"/DC={part}" for part in reversed(host.split("."))) + f"/CN={host}"


def key_csr_primitives(host: str, bits: int = KEY_BITS) -> list[Primitive]:
    """Directories, then a key made on the host (0600, never copied off), then a CSR that matches that key."""
    key, csr = host_key_path(host), host_csr_path(host)
    return [
        *(Directory(path=f"{TLS_DIR}/{sub}", mode=mode) for sub, mode in
          (("misc", "0755"), ("private", "0700"), ("certs", "0755"))),
        Command(cmd="umask 077 && " + argv("openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
                                           f"rsa_keygen_bits:{bits}", "-out", f"{key}.new")
                    + " && " + argv("mv", "-f", f"{key}.new", key), creates=key),
        Command(args=["chmod", "0600", key],
                onlyif=f"{argv('test', '-f', key)} && [ \"$({argv('stat', '-L', '-c', '%a', '--', key)})\" != 600 ]"),
        Command(cmd=argv("openssl", "req", "-new", "-sha256", "-key", key, "-subj", subject(host), "-out",
                         f"{csr}.new") + " && " + argv("mv", "-f", f"{csr}.new", csr),
                unless=f"{argv('test', '-f', csr)} && "
                       f"[ \"$({argv('openssl', 'req', '-in', csr, '-noout', '-pubkey')})\" = "
                       f"\"$({argv('openssl', 'pkey', '-in', key, '-pubout')})\" ]"),
    ]


def pem_body(pem: bytes) -> str:
    """The base64 body of a PEM certificate on one line: how the trust bundle check finds it."""
    return "".join(line for line in pem.decode().splitlines() if line and not line.startswith("-----"))


def trust_primitives(facts: Facts, ca_pem: bytes, notify: tuple[str, ...] = ()) -> list[Primitive]:
    """The CA as a system trust anchor; the store is rebuilt only while its bundle lacks the CA."""
    bundle = TRUST_BUNDLE["redhat" if facts.is_redhat else "debian"]
    return [
        File(path=ca_anchor_path(facts), content=ca_pem, mode="0644").with_notify(*notify),
        Command(cmd=ca_trust_update_command(facts),
                unless=f"tr -d '\\n' < {q(bundle)} | grep -qF {q(pem_body(ca_pem))}"),
    ]


def read_script(host: str) -> str:
    """Read-only: the host key's PUBLIC half, the CSR, the installed cert (the private key stays put), and whether
    a docker engine is there to restart when they change."""
    key, csr, cert = host_key_path(host), host_csr_path(host), host_cert_path(host)
    return (f"echo {MARK}pub; {argv('test', '-f', key)} && {argv('openssl', 'pkey', '-in', key, '-pubout')} "
            f"2>/dev/null; echo {MARK}csr; {argv('test', '-f', csr)} && {argv('cat', csr)}; "
            f"echo {MARK}cert; {argv('test', '-f', cert)} && {argv('cat', cert)}; "
            f"echo {MARK}docker; {argv('systemctl', 'show', '-p', 'LoadState', '--value', 'docker.service')} "
            "2>/dev/null; true")


def parse_read(output: str) -> dict[str, bytes | None]:
    """Sections of read_script's output; an empty section is None."""
    out: dict[str, bytes | None] = {"pub": None, "csr": None, "cert": None, "docker": None}
    for chunk in output.split(MARK)[1:]:
        name, _, body = chunk.partition("\n")
        if name in out:
            out[name] = body.encode() if body.strip() else None
    return out


def docker_handlers(found: dict[str, bytes | None]) -> tuple[str, ...]:
    """dockerd reads its TLS files at start: restart it when they change, if it is installed (hive-builder's
    `update CA cert` handler)."""
    return (DOCKER_RESTART,) if (found.get("docker") or b"").strip() == b"loaded" else ()


@dataclass(frozen=True)
class CertDecision:
    """What to do with the host certificate: keep it, sign anew (why), or wait for the key/CSR (check mode)."""

    reason: str  # "" keeps the installed cert
    cert: bytes | None  # the content to install (None: nothing to install yet)


def decide(ca: StageCA, identity: HostIdentity, found: dict[str, bytes | None], check: bool) -> CertDecision:
    """Pure: keep a cert that fits, else sign the host's CSR (in check mode only say so). A CA that cannot sign
    usable certificates now fails in every mode; a cert that is not valid yet is signed again."""
    unusable = ca_problem(ca)
    if unusable:
        raise StepFailed(f"{identity.name}: {unusable}")
    if not found["pub"] or not found["csr"]:
        if check:
            return CertDecision("the host key and CSR would be created first", None)
        raise StepFailed(f"{identity.name}: no key or CSR in {TLS_DIR} after creating them")
    problem = cert_problem(found["cert"], ca, found["pub"], identity)
    if not problem:
        return CertDecision("", found["cert"])
    if check:
        return CertDecision(problem, None)
    try:
        if not csr_matches_key(found["csr"], found["pub"]):
            raise StepFailed(f"{identity.name}: the CSR does not match the host key")
        return CertDecision(problem, sign_csr(ca, found["csr"], identity))
    except CAError as e:
        raise StepFailed(str(e)) from e


def stage_ca(ctx: TaskContext) -> StageCA | None:
    """The stage CA, created once per run under the run lock (check mode: only loaded, None if absent)."""
    context_dir = ctx.context_dir
    if context_dir is None:
        raise StepFailed("tls-certificate needs the stage context directory (.hive/<stage>)")
    with ctx.lock:
        if CA_SHARED in ctx.shared:
            return ctx.shared[CA_SHARED]
        cert, key = ctx.var("hive_ca_cert"), ctx.var("hive_ca_key")
        try:
            if ctx.check:
                ca = existing_ca(context_dir, cert, key)
                stored = existing_ca(context_dir) if ca is not None and cert else ca
                if ca is None:
                    ctx.changed("ca", f"create the stage CA in {controller_ca_dir(context_dir)}")
                elif stored is None or stored.cert != ca.cert:
                    ctx.changed("ca", f"write the site's CA (hive_ca_cert) to {controller_ca_dir(context_dir)}")
            else:
                name = str(ctx.var("hive_name") or ctx.name.partition(".")[2] or "hive")
                ca, made = ensure_ca(context_dir, f"ca.{name}", cert, key)
                if made:
                    ctx.changed("ca", f"write the stage CA to {controller_ca_dir(context_dir)}")
        except CAError as e:
            raise StepFailed(f"stage CA: {e}") from e
        ctx.shared[CA_SHARED] = ca
        return ca


def tls_certificate(ctx: TaskContext) -> None:
    """Key and CSR on the host, signature on the controller, cert + CA installed; nothing moves when all fits."""
    facts, host = ctx.facts, ctx.name
    ip = str(ctx.var("hive_private_ip") or "")
    if not ip:
        raise StepFailed(f"{host}: hive_private_ip is not set (the certificate's IP SAN)")
    ca = stage_ca(ctx)
    ctx.ensure([Packages(names=["openssl", "ca-certificates"]), *key_csr_primitives(host)])
    found = parse_read(ctx.run(read_script(host)).stdout)
    cert_path = host_cert_path(host)
    if ca is None:
        ctx.changed(f"file[{cert_path}]", f"sign and install {cert_path} (stage CA would be created)")
        ctx.changed(f"file[{ca_anchor_path(facts)}]", "install the stage CA and update the trust store")
        return
    decision = decide(ca, HostIdentity(host, ip), found, ctx.check)
    notify = docker_handlers(found)
    items: list[Primitive] = []
    if decision.cert is not None:
        items.append(File(path=cert_path, content=decision.cert, mode="0644").with_notify(*notify))
    elif decision.reason:
        ctx.changed(f"file[{cert_path}]", f"sign and install {cert_path}: {decision.reason}")
        ctx.notify(*notify)
    ctx.ensure([*items, *trust_primitives(facts, ca.cert_pem, notify)])
