"""The evidence parts an app holds: the signing keys (a file, its public keys in the catalog) and the
export runner.

Why a module of its own: `create_app` builds them once, at start — which is when a service that
has no signing key yet makes one (and audits it) — and the evidence routers reach them through
`Services.extra` without the shared `Services` type growing for them."""

from __future__ import annotations

from dataclasses import dataclass

import core
from api.dependencies import ApiContext, Services
from evidence.exports import ExportRunner
from evidence.signing_keys import SigningKeys, exports_path, key_path, publish_in
from storage.audit_log import add_audit

__all__ = ["EvidenceServices", "evidence_of", "start_evidence"]


@dataclass(slots=True)
class EvidenceServices:
    keys: SigningKeys
    runner: ExportRunner


def start_evidence(ctx: ApiContext) -> EvidenceServices:
    s = ctx.settings
    keys = SigningKeys(key_path(s))
    now_us = int(ctx.clock.now() * 1_000_000)
    if keys.ensure(now_us):
        add_audit(ctx.catalog, "signing_key.create", at_us=now_us,
                  detail={"fingerprint": keys.current().fingerprint, "path": str(keys.path)})
    publish_in(keys, ctx.catalog, s.node_id)  # its current key, and any published only in its directory before
    runner = ExportRunner(ctx.catalog, ctx.store, keys, exports_path(s), workers=s.evidence.exports_at_once,
                          node_id=s.node_id, version=core.__version__, clock=ctx.clock)
    return EvidenceServices(keys, runner)


def evidence_of(svc: Services) -> EvidenceServices:
    ev = svc.extra["evidence"]
    assert isinstance(ev, EvidenceServices)
    return ev
