"""``pgtls cert ...`` and ``pgtls check``: argument parsing and printing only.

The top-level ``pgtls`` parser calls :func:`add_cert_parser` and
:func:`add_check_parser`; each registered command sets ``func`` to a callable
taking the parsed namespace and returning the exit status.  Every user error is
one line on stderr (``pgtls cert: error: ...``) with exit status 2 -- never a
traceback, never a key or passphrase.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from pgtls.certs import commands
from pgtls.certs.authority import Authority, load_authority
from pgtls.certs.check import Finding, exit_status
from pgtls.certs.checkdir import run_check
from pgtls.certs.pemfiles import PASSPHRASE_SOURCES, CertError, passphrase_reader
from pgtls.certs.x509build import KEY_KINDS


def _when(value: str) -> dt.datetime:
    try:
        t = dt.datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO date/time: {value!r}") from None
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def _positive(value: str) -> int:
    try:
        n = int(value, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {value!r}") from None
    if n <= 0:
        raise argparse.ArgumentTypeError("must be positive")
    return n


def _common(p: argparse.ArgumentParser, out_default: str, *, subject: bool = True) -> None:
    g = p.add_argument_group("output")
    g.add_argument(
        "--out-dir", type=Path, default=Path("."), help="directory for the files (default: current)"
    )
    g.add_argument(
        "--out",
        default=out_default,
        help=f"file name prefix: PREFIX.crt and PREFIX.key (default: {out_default})",
    )
    g.add_argument("--force", action="store_true", help="replace an existing private key")
    k = p.add_argument_group("key")
    k.add_argument(
        "--key-type",
        choices=KEY_KINDS,
        default="ec",
        help="ec = ECDSA P-256 (default), rsa2048/3072/4096, ed25519",
    )
    k.add_argument(
        "--key-passphrase",
        metavar="SOURCE",
        help=f"encrypt the new key; passphrase from {PASSPHRASE_SOURCES}",
    )
    v = p.add_argument_group("validity and serial")
    v.add_argument(
        "--days", type=_positive, help="validity in days from now (default depends on the command)"
    )
    v.add_argument("--not-before", type=_when, help="start of validity (ISO 8601, default now)")
    v.add_argument("--not-after", type=_when, help="end of validity (ISO 8601); overrides --days")
    v.add_argument("--serial", type=_positive, help="serial number (default: random 159 bits)")
    if subject:
        s = p.add_argument_group("subject")
        s.add_argument("--cn", help="common name")
        s.add_argument(
            "--subj",
            help='more subject fields in OpenSSL form, e.g. "/O=Example/OU=DB" (CN, O, OU, C, ST, L, emailAddress)',
        )


def _signed(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--ca", required=True, metavar="NAME", help="the signing CA: NAME.crt and NAME.key (a path prefix)"
    )
    p.add_argument(
        "--ca-passphrase", metavar="SOURCE", help=f"passphrase of an encrypted CA key: {PASSPHRASE_SOURCES}"
    )


def _san(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--san",
        action="append",
        default=[],
        help="subjectAltName DNS:name or IP:addr (repeatable; default: the CN)",
    )


def add_cert_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``cert`` and its subcommands (the recipes of §19.9.5)."""
    cert = subparsers.add_parser(
        "cert",
        help="create certificates, keys and CRLs (§19.9.5)",
        description="Create certificates, keys and CRLs for PostgreSQL SSL (§19.9.5).",
    )
    cert.set_defaults(func=lambda args: _usage(cert))
    sub = cert.add_subparsers(dest="cert_command", metavar="COMMAND")

    p = sub.add_parser("selfsigned", help="self-signed server.crt/server.key, 365 days")
    _common(p, "server")
    _san(p)
    p.set_defaults(func=_run(_selfsigned))

    p = sub.add_parser("ca", help="root CA root.crt/root.key (v3_ca), 3650 days")
    _common(p, "root")
    p.set_defaults(func=_run(_ca))

    p = sub.add_parser("intermediate", help="intermediate CA signed by --ca (v3_ca, pathlen), 1825 days")
    _common(p, "intermediate")
    _signed(p)
    p.add_argument(
        "--path-length", type=int, default=0, help="basicConstraints pathlen (default 0; -1 for none)"
    )
    p.set_defaults(func=_run(_intermediate))

    p = sub.add_parser("server", help="server certificate (serverAuth) with the chain bundled, 365 days")
    _common(p, "server")
    _signed(p)
    _san(p)
    p.set_defaults(func=_run(_server))

    p = sub.add_parser("client", help="client certificate (clientAuth), CN = database user, 365 days")
    _common(p, "client")
    _signed(p)
    p.add_argument(
        "--libpq",
        action="store_true",
        help="write ~/.postgresql/postgresql.crt, postgresql.key and root.crt (libpq's defaults)",
    )
    p.set_defaults(func=_run(_client))

    p = sub.add_parser("revoke", help="record a certificate as revoked in the CA's NAME.revoked.json")
    p.add_argument(
        "--ca",
        required=True,
        metavar="NAME",
        help="the issuing CA: NAME.crt (NAME.revoked.json is kept beside NAME.key)",
    )
    p.add_argument("cert", type=Path, metavar="CERT", help="the certificate to revoke (PEM)")
    p.set_defaults(func=_run(_revoke))

    p = sub.add_parser("crl", help="write a CRL file and/or an ssl_crl_dir hashed directory")
    p.add_argument(
        "--ca",
        required=True,
        action="append",
        metavar="NAME",
        help="CA whose revocations to publish (repeatable: every CA that verifies clients needs one)",
    )
    p.add_argument(
        "--ca-passphrase", metavar="SOURCE", help=f"passphrase of an encrypted CA key: {PASSPHRASE_SOURCES}"
    )
    p.add_argument(
        "--out-dir", type=Path, default=Path("."), help="directory for the CRL file (default: current)"
    )
    p.add_argument("--out", type=Path, help="CRL file (default: NAME.crl, or NAME1+NAME2.crl)")
    p.add_argument(
        "--dir", type=Path, help="write the OpenSSL hashed layout (<hash>.r0) for ssl_crl_dir here"
    )
    p.add_argument("--days", type=_positive, default=30, help="days until the next update (default 30)")
    p.set_defaults(func=_run(_crl))


def add_check_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``check``: diagnose the SSL setup of a data directory."""
    p = subparsers.add_parser(
        "check",
        help="diagnose the SSL setup of a data directory or a running server",
        description="Check postgresql.conf, pg_hba.conf and the SSL files they name, or "
        "(--server) what a running server presents. "
        "Exit status: 0 clean, 1 warnings, 2 errors.",
    )
    p.add_argument("--server", metavar="HOST:PORT", help="inspect a live server over SSLRequest instead")
    p.add_argument("--sni", metavar="NAME", help="with --server: the name to send as SNI")
    p.add_argument(
        "--rootcert", metavar="FILE", help="with --server: verify the chain and name (verify-full)"
    )
    p.add_argument(
        "-D",
        "--pgdata",
        type=Path,
        default=os.environ.get("PGDATA"),
        help="data directory (default: $PGDATA)",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument(
        "--passphrase", metavar="SOURCE", help=f"passphrase of an encrypted server key: {PASSPHRASE_SOURCES}"
    )
    p.set_defaults(func=_check)


# --- cert commands -------------------------------------------------------------------------------


def _usage(p: argparse.ArgumentParser) -> int:
    p.print_help(sys.stderr)
    return 2


def _run(fn: Callable[[argparse.Namespace], list[commands.Written]]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            written = fn(args)
        except CertError as e:
            print(f"pgtls cert: error: {e}", file=sys.stderr)
            return 2
        except OSError as e:
            print(f"pgtls cert: error: {e.strerror or e}: {e.filename or ''}".rstrip(": "), file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("pgtls cert: interrupted", file=sys.stderr)
            return 2
        for w in written:
            place = "keep offline" if w.where == "offline" else f"for the {w.where}"
            print(f"wrote {w.path}\n    {place}: {w.note}")
        return 0

    return run


def _keyspec(args: argparse.Namespace) -> commands.KeySpec:
    pw = (
        passphrase_reader(args.key_passphrase, confirm=True, what="passphrase for the new key")()
        if args.key_passphrase
        else None
    )
    return commands.KeySpec(args.key_type, pw)


def _validity(args: argparse.Namespace) -> commands.Validity:
    return commands.Validity(args.days, args.not_before, args.not_after, args.serial)


def _prefix(args: argparse.Namespace) -> Path:
    return args.out_dir / args.out


def _authority(args: argparse.Namespace, spec: str | None = None, need_key: bool = True) -> Authority:
    src = getattr(args, "ca_passphrase", None)
    getter = passphrase_reader(src, what="CA key passphrase") if src else None
    return load_authority(
        spec or args.ca, getter, (args.out_dir,) if hasattr(args, "out_dir") else (), need_key=need_key
    )


def _selfsigned(args: argparse.Namespace) -> list[commands.Written]:
    subject = commands.parse_subject(args.subj, args.cn)
    return commands.selfsigned(
        _prefix(args), subject, _sans(args.san), _keyspec(args), _validity(args), args.force
    )


def _ca(args: argparse.Namespace) -> list[commands.Written]:
    subject = commands.parse_subject(args.subj, args.cn or "pgtls root CA")
    return commands.new_ca(_prefix(args), subject, _keyspec(args), _validity(args), args.force)


def _intermediate(args: argparse.Namespace) -> list[commands.Written]:
    subject = commands.parse_subject(args.subj, args.cn or "pgtls intermediate CA")
    ca = _authority(args)
    plen = None if args.path_length < 0 else args.path_length
    return commands.intermediate(
        _prefix(args), ca, subject, _keyspec(args), _validity(args), plen, args.force
    )


def _server(args: argparse.Namespace) -> list[commands.Written]:
    subject = commands.parse_subject(args.subj, args.cn)
    ca = _authority(args)
    return commands.server(
        _prefix(args), ca, subject, _sans(args.san), _keyspec(args), _validity(args), args.force
    )


def _client(args: argparse.Namespace) -> list[commands.Written]:
    subject = commands.parse_subject(args.subj, args.cn)
    ca = _authority(args)
    libpq = Path.home() / ".postgresql" if args.libpq else None
    return commands.client(_prefix(args), ca, subject, _keyspec(args), _validity(args), args.force, libpq)


def _revoke(args: argparse.Namespace) -> list[commands.Written]:
    ca = _authority(args, need_key=False)
    added, written = commands.revoke(ca, args.cert)
    if not added:
        print(f"{args.cert} was already revoked")
    return written


def _crl(args: argparse.Namespace) -> list[commands.Written]:
    src = args.ca_passphrase
    getter = passphrase_reader(src, what="CA key passphrase") if src else None
    cas = [load_authority(spec, getter, (args.out_dir,)) for spec in args.ca]
    out = args.out
    if out is None and args.dir is None:
        out = Path("+".join(Path(s).name.removesuffix(".crt") for s in args.ca) + ".crl")
    if out is not None and not out.is_absolute():
        out = args.out_dir / out
    return commands.crl(cas, out, args.dir, args.days)


def _sans(values: Sequence[str]) -> list[str]:
    return [s.strip() for v in values for s in v.split(",") if s.strip()]


# --- check -------------------------------------------------------------------------------------------


def _format(f: Finding) -> str:
    where = f"{f.file}:{f.line}" if f.line else f.file
    return f"{f.severity.value:<7} {where}: {f.message} [{f.code}]\n        fix: {f.fix}"


def _check(args: argparse.Namespace) -> int:
    def fail(msg: str) -> int:
        if args.json:
            print(json.dumps({"data_directory": str(args.pgdata), "status": 2, "error": msg, "findings": []}))
        else:
            print(f"pgtls check: error: {msg}", file=sys.stderr)
        return 2

    if args.server:
        from pgtls.certs.liveserver import check_server, format_report

        rep = check_server(args.server, args.sni, args.rootcert)
        if args.json:
            print(json.dumps(rep.to_dict(), indent=2))
        else:
            print("\n".join(format_report(rep)))
        return rep.status
    if args.pgdata is None:
        return fail("no data directory given (use -D or set PGDATA)")
    try:
        getter = passphrase_reader(args.passphrase, what="server key passphrase") if args.passphrase else None
        findings = run_check(Path(args.pgdata), passphrase=getter)
    except CertError as e:
        return fail(str(e))
    except OSError as e:
        return fail(f"{e.strerror or e}: {e.filename or ''}")
    status = exit_status(findings)
    if args.json:
        print(
            json.dumps(
                {
                    "data_directory": str(args.pgdata),
                    "status": status,
                    "findings": [f.to_dict() for f in findings],
                },
                indent=2,
            )
        )
        return status
    for f in findings:
        print(_format(f))
    n_err = sum(1 for f in findings if f.severity == "error")
    n_warn = len(findings) - n_err
    if findings:
        print(f"pgtls check: {n_err} error(s), {n_warn} warning(s) in {args.pgdata}")
    else:
        print(f"pgtls check: no problems found in {args.pgdata}")
    return status
