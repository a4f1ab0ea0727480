"""`GET /api/signing-keys`: the public keys evidence bundles are signed with (PEM), the current one
and every retired one, so a bundle signed before a rotation still verifies."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from api.dependencies import Principal, ServicesDep, require
from api.evidence_services import evidence_of

router = APIRouter(tags=["evidence"])
Viewer = Annotated[Principal, Depends(require("viewer"))]


class SigningKeyOut(BaseModel):
    algorithm: str = "Ed25519"
    fingerprint_sha256: str = Field(description="SHA-256 of the DER SubjectPublicKeyInfo (hex)")
    pem: str
    created_us: int
    current: bool


class SigningKeyList(BaseModel):
    keys: list[SigningKeyOut]


@router.get("/api/signing-keys", response_model=SigningKeyList)
def signing_keys(_: Viewer, svc: ServicesDep) -> SigningKeyList:
    return SigningKeyList(keys=[
        SigningKeyOut(fingerprint_sha256=k.fingerprint, pem=k.pem, created_us=k.created_us, current=k.current)
        for k in evidence_of(svc).keys.public_keys()
    ])
