"""API keys (admin): list, create (the key is shown once), revoke."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Response

from api.dependencies import Principal, ServicesDep, now_us, require
from api.schemas import KeyCreate, KeyCreated, KeyList, KeyOut
from storage.api_keys import KeyInfo, create_key, get_key, list_keys, revoke_key
from storage.audit_log import add_audit

router = APIRouter(prefix="/api/keys", tags=["keys"])
Admin = Annotated[Principal, Depends(require("admin"))]


def key_out(k: KeyInfo) -> KeyOut:
    return KeyOut(id=k.id, name=k.name, role=k.role, created_us=k.created_us, revoked=k.revoked)


@router.get("", response_model=KeyList)
def keys(_: Admin, svc: ServicesDep) -> KeyList:
    return KeyList(keys=[key_out(k) for k in list_keys(svc.ctx.catalog)])


@router.post("", response_model=KeyCreated, status_code=201)
def new_key(who: Admin, body: KeyCreate, svc: ServicesDep) -> KeyCreated:
    at = now_us(svc)
    key = create_key(svc.ctx.catalog, body.role, body.name, now_us=at)
    info = get_key(svc.ctx.catalog, key.split("_")[1])
    assert info is not None
    add_audit(svc.ctx.catalog, "key.create", key=who.key, at_us=at, detail={"id": info.id, "role": info.role})
    return KeyCreated(**key_out(info).model_dump(), key=key)


@router.delete("/{key_id}", status_code=204, response_class=Response)
def revoke(
    who: Admin,
    key_id: Annotated[str, Path(max_length=32)],
    svc: ServicesDep,
) -> Response:
    if not revoke_key(svc.ctx.catalog, key_id):
        raise HTTPException(404, f"unknown key {key_id!r}")
    svc.keys.clear()
    add_audit(svc.ctx.catalog, "key.revoke", key=who.key, at_us=now_us(svc), detail={"id": key_id})
    return Response(status_code=204)
