"""The `vigil` command: run, demo, report, keys, signing-key, verify, audit."""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import datetime, timezone

from core.roles import ALL_ROLES
from core.settings import ConfigError, Settings, load_settings

__all__ = ["main"]


def _settings(args: argparse.Namespace) -> Settings:
    s = load_settings(getattr(args, "config", None))
    if getattr(args, "node_id", None):
        s.node_id = args.node_id
    return s


def _parse_time(text: str) -> int:
    """ISO 8601 (UTC or with offset) or epoch seconds → µs."""
    try:
        return int(float(text) * 1_000_000)
    except ValueError:
        pass
    t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if t.tzinfo is None:
        t = t.replace(tzinfo=timezone.utc)
    return int(t.timestamp() * 1_000_000)


def cmd_run(args: argparse.Namespace) -> int:
    from core.logs import setup_logging
    from vigil.service import Service

    setup_logging(os.environ.get("VIGIL_LOG_LEVEL", "INFO"))
    Service(_settings(args)).serve()
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from vigil.demo import run_demo

    return run_demo(data_dir=args.data, port=args.port)


def cmd_report(args: argparse.Namespace) -> int:
    from storage.catalog import Catalog

    s = _settings(args)
    start, end = _parse_time(args.start), _parse_time(args.end)
    if args.tickets:
        from reports import tickets

        trows = tickets.ticket_report(Catalog(s.catalog), start, end, by=args.by)
        sys.stdout.write(tickets.to_csv(trows) if args.format == "csv" else tickets.to_json(trows) + "\n")
        return 0
    from reports import availability

    now_us = int(time.time() * 1_000_000)  # time to come is not counted; a stale status is unknown
    rows = availability.availability(Catalog(s.catalog), start, end, by=args.by, now_us=now_us)
    sys.stdout.write(availability.to_csv(rows) if args.format == "csv" else availability.to_json(rows) + "\n")
    return 0


def cmd_keys_create(args: argparse.Namespace) -> int:
    from storage.api_keys import create_key
    from storage.catalog import Catalog

    from storage.audit_log import add_audit

    s = _settings(args)
    catalog = Catalog(s.catalog)
    key = create_key(catalog, args.role, args.name)
    add_audit(catalog, "key.create", detail={"id": key.split("_")[1], "role": args.role, "via": "cli"})
    print(key)
    print(f"(a {args.role} key named {args.name!r}; it is shown only this once)", file=sys.stderr)
    return 0


def cmd_secrets_new_key(_: argparse.Namespace) -> int:
    from storage.sealing import new_key

    print(new_key())
    return 0


def cmd_secrets_rotate(args: argparse.Namespace) -> int:
    """Reseal every camera password and server secret with the first key (see storage/sealing.py)."""
    from storage.catalog import Catalog
    from storage.sealing import load_sealer
    from storage.server_secrets import reseal_server_secrets

    s = _settings(args)
    catalog = Catalog(s.catalog, sealer=load_sealer(s, create=False))
    n, m = catalog.seal_credentials(), reseal_server_secrets(catalog)
    print(f"resealed {n} camera password row(s) and {m} server secret(s) with the first key", file=sys.stderr)
    return 0


def cmd_signing_key(args: argparse.Namespace) -> int:
    from evidence.signing_keys import SigningKeys, key_path, publish_in
    from storage.audit_log import add_audit
    from storage.catalog import Catalog

    s = _settings(args)
    keys = SigningKeys(key_path(s))
    catalog = Catalog(s.catalog)
    if getattr(args, "action", None) == "rotate":
        old, new = keys.rotate()
        add_audit(catalog, "signing_key.rotate", detail={"old": old, "new": new, "via": "cli"})
        print(f"rotated: {old} -> {new} (the old public key stays published, retired)", file=sys.stderr)
    elif keys.ensure():
        add_audit(catalog, "signing_key.create", detail={"fingerprint": keys.current().fingerprint, "via": "cli"})
    publish_in(keys, catalog, s.node_id)  # the new key in the catalog, the old one retired there
    for k in catalog.published_signing_keys():  # every node's, not only this one's
        state = "current" if k.current else "retired"
        retired = f", retired {_iso_us(k.retired_us)}" if k.retired_us is not None else ""
        print(f"# {state} Ed25519 key, SHA-256 fingerprint {k.fingerprint}, node {k.node_id!r}, "
              f"created {_iso_us(k.created_us)}{retired}")
        print(k.pem, end="")
    return 0


def _iso_us(us: int) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(us / 1e6, dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def cmd_verify(args: argparse.Namespace) -> int:
    from pathlib import Path

    from evidence.verify import verify_bundle

    catalog = trusted = None
    if args.config:  # any node's config: the catalog publishes every node's keys
        from storage.catalog import Catalog

        catalog = Catalog(_settings(args).catalog, create=False)
    if args.key:
        trusted = [Path(args.key).read_text()]
    rep = verify_bundle(Path(args.bundle), trusted=trusted, catalog=catalog)
    for line in rep.checked:
        print(f"ok   {line}")
    for line in rep.problems:
        print(f"FAIL {line}")
    if trusted is None and catalog is None:
        print("note: the signing key was checked only against the bundle itself; give --config (the service's "
              "published keys and audit log) or --key to check whose key it is")
    print("verified" if rep.ok else f"NOT VERIFIED: {len(rep.problems)} problem(s)")
    return 0 if rep.ok else 1


def cmd_audit_verify(args: argparse.Namespace) -> int:
    from storage.audit_log import verify_chain
    from storage.catalog import Catalog

    s = _settings(args)
    rep = verify_chain(Catalog(s.catalog, create=False))
    for p in rep.problems:
        print(f"FAIL {p.message}")
    if rep.ok:
        print(f"audit log intact: {rep.rows} rows, head row {rep.head_id} sha256 {rep.head_sha256}")
    else:
        print(f"audit log NOT intact: {len(rep.problems)} problem(s) in {rep.rows} rows")
    return 0 if rep.ok else 1


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vigil", description="Records and watches a city's CCTV.")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="record the configured cameras and serve the API")
    r.add_argument("--config", "-c", required=True, help="YAML configuration file")
    r.add_argument("--node-id", help="this node's name in a cluster (default: host name)")
    r.set_defaults(func=cmd_run)

    d = sub.add_parser("demo", help="record the sample streams into ./data and serve the web page")
    d.add_argument("--data", default="./data", help="where recordings and the catalog go")
    d.add_argument("--port", type=int, default=8080)
    d.set_defaults(func=cmd_demo)

    rep = sub.add_parser("report", help="availability report per camera or per tag")
    rep.add_argument("--config", "-c", required=True)
    rep.add_argument("--from", dest="start", required=True, help="ISO 8601 or epoch seconds")
    rep.add_argument("--to", dest="end", required=True)
    rep.add_argument("--by", help="a tag name, e.g. district")
    rep.add_argument("--format", choices=["csv", "json"], default="json")
    rep.add_argument("--tickets", action="store_true", help="fault tickets: MTTA and MTTR (detect → acknowledge → repair)")
    rep.set_defaults(func=cmd_report)

    k = sub.add_parser("keys", help="API keys")
    ksub = k.add_subparsers(dest="keys_command", required=True)
    kc = ksub.add_parser("create", help="create a key and print it once")
    kc.add_argument("--config", "-c", required=True)
    kc.add_argument("--role", choices=list(ALL_ROLES), required=True)
    kc.add_argument("--name", required=True)
    kc.set_defaults(func=cmd_keys_create)

    sec = sub.add_parser("secrets", help="the key that seals credentials in the catalog")
    ssub = sec.add_subparsers(dest="secrets_command", required=True)
    ssub.add_parser("new-key", help="print a new key").set_defaults(func=cmd_secrets_new_key)
    rot = ssub.add_parser("rotate", help="reseal everything with the first key (put the new key first)")
    rot.add_argument("--config", "-c", required=True)
    rot.set_defaults(func=cmd_secrets_rotate)

    sk = sub.add_parser("signing-key", help="print the evidence signing keys (public, PEM); `rotate` makes a new one")
    sk.add_argument("action", nargs="?", choices=["rotate"], help="replace the key; old public keys stay published")
    sk.add_argument("--config", "-c", required=True)
    sk.set_defaults(func=cmd_signing_key)

    v = sub.add_parser("verify", help="check an evidence bundle: signature, every digest, the audit log")
    v.add_argument("bundle", help="bundle.zip, or the folder it was unzipped into")
    v.add_argument("--config", "-c", help="the service's config: trust only its keys; check its audit log")
    v.add_argument("--key", help="a public key (PEM) to trust")
    v.set_defaults(func=cmd_verify)

    a = sub.add_parser("audit", help="the audit log")
    asub = a.add_subparsers(dest="audit_command", required=True)
    av = asub.add_parser("verify", help="check the hash chain; name any edited, inserted or deleted row")
    av.add_argument("--config", "-c", required=True)
    av.set_defaults(func=cmd_audit_verify)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as e:
        print(f"vigil: config error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
