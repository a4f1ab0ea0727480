"""`GET /api/signing-keys`: the public keys evidence bundles are signed with (PEM), of every node of
the cluster, from the catalog: each with its node, when it was made, when it was retired, and
whether it is its node's key in use — so a bundle made on any node, signed before a rotation or by
a node that is gone, is checked against keys any node serves."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from api.dependencies import Principal, ServicesDep, require

router = APIRouter(tags=["evidence"])
Viewer = Annotated[Principal, Depends(require("viewer"))]


class SigningKeyOut(BaseModel):
    algorithm: str = "Ed25519"
    fingerprint_sha256: str = Field(description="SHA-256 of the DER SubjectPublicKeyInfo (hex)")
    pem: str
    node_id: str = Field(description="the node that signs (or signed) with it; '' for an unnamed single node")
    created_us: int
    retired_us: int | None = Field(description="when its node rotated to a new key; null while in use")
    current: bool = Field(description="its node's key in use (not retired)")


class SigningKeyList(BaseModel):
    keys: list[SigningKeyOut]


@router.get("/api/signing-keys", response_model=SigningKeyList)
def signing_keys(_: Viewer, svc: ServicesDep) -> SigningKeyList:
    return SigningKeyList(keys=[
        SigningKeyOut(fingerprint_sha256=k.fingerprint, pem=k.pem, node_id=k.node_id, created_us=k.created_us,
                      retired_us=k.retired_us, current=k.current)
        for k in svc.ctx.catalog.published_signing_keys()
    ])
