"""Participants and their accounts: registration (admin), meter uploads, my bill and certificates."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from p2penergy.ledger.engine import unix_seconds
from p2penergy.service.deps import Live, Reader, admin, public
from p2penergy.service.models import Bill, Certificate, Flow, MeterIn, MyFlow, ParticipantIn, links, problems
from p2penergy.service.routes_market import bill_of, flows_of, month_of, my_flows_of

router = APIRouter(tags=["participants"])
ERRORS = problems(401, 409, 413, 422, 429, 500, 503)
READ_ERRORS = problems(401, 422, 429)
ADMIN_ERRORS = problems(401, 422, 429)


@router.post("/api/participants", status_code=201, response_model=ParticipantIn, responses={**ERRORS, **links(
    201, "Registered", Participants=("get", "/api/participants", {}), EveryBill=("get", "/api/operator/bills", {}))},
             dependencies=[Depends(admin)])
def register(body: ParticipantIn, ex: Live) -> ParticipantIn:
    """Register a participant's address (admin token). The participant keeps its private key."""
    ex.register(body.participant, body.address)
    return body


@router.get("/api/participants", response_model=list[str], dependencies=[Depends(public)],
            responses=problems(429))
def participants(ex: Live) -> list[str]:
    """Registered participant ids."""
    return sorted(ex.addresses)


@router.post("/api/meter", status_code=201, response_model=dict[str, str],
             responses={**ERRORS, **links(201, "Recorded", MyBill=("get", "/api/me/bill", {}))},
             openapi_extra={"x-eip712-primary-type": "MeterReading"})
def upload_meter(body: MeterIn, ex: Live) -> dict[str, str]:
    """Upload one slot's meter reading, signed by the participant (see service.auth).

    Each value must lie within what the participant's connection can carry in a slot (``soc_wh``:
    what its storage holds; ``service/meters.py``); the slot must be a slot start of the market's
    calendar that has started."""
    ex.upload_meter(body.participant, body.slot_start, body.values, body.nonce,
                    bytes.fromhex(body.signature.removeprefix("0x")))
    return {"status": "recorded"}


@router.get("/api/me/bill", response_model=Bill, responses=READ_ERRORS)
def my_bill(who: Reader, ex: Live, month: Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}$")] = None) -> Bill:
    """My bill of a month so far (signed read): P2P, the utility's bill of my readings, the total."""
    m = month_of(ex, month)
    with ex.lock:
        return bill_of(ex, who, m)


@router.get("/api/operator/bills", response_model=list[Bill], responses=ADMIN_ERRORS,
            dependencies=[Depends(admin)])
def every_bill(ex: Live, month: Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}$")] = None) -> list[Bill]:
    """Every participant's bill of a month, with its readings' totals (the operator's admin token)."""
    m = month_of(ex, month)
    with ex.lock:
        return [bill_of(ex, pid, m) for pid in sorted(ex.addresses)]


@router.get("/api/me/certificates", response_model=list[Certificate], responses=READ_ERRORS)
def my_certificates(who: Reader, ex: Live) -> list[Certificate]:
    """Origin of the energy I bought (signed read): the provenance registry's certificates for settled
    slots (a Wh bought without one came from storage or the grid), the seller's declared tag for the rest."""
    with ex.lock:
        out = [Certificate(trade_id=e["trade_id"], slot_start=e["slot_start"], energy_wh=e["energy_wh"],
                           attributes={k: e[k] for k in ("source", "producer", "device", "site") if e.get(k)},
                           status="certified", cert_id=e["cert_id"]) for e in ex.certified.get(who, ())]
        settled = ex.engine.committed
        out += [Certificate(trade_id=t.trade_id, slot_start=t.slot_start, energy_wh=t.energy_wh,
                            attributes=t.tag.as_dict(), status="pending")
                for t in ex.trades_of.get(who, ()) if t.buyer == who and unix_seconds(t.slot_start) not in settled]
        return out


@router.get("/api/me/provenance", response_model=list[MyFlow], responses=READ_ERRORS)
def my_provenance(who: Reader, ex: Live) -> list[MyFlow]:
    """My energy bought and sold per source and declared producer (signed read; no counterparty named)."""
    with ex.lock:
        return my_flows_of(ex.trades_of.get(who, []), who)


@router.get("/api/operator/provenance", response_model=list[Flow], responses=ADMIN_ERRORS,
            dependencies=[Depends(admin)])
def every_flow(ex: Live) -> list[Flow]:
    """Energy from each source and producer to each buyer (the operator's admin token)."""
    with ex.lock:
        return flows_of(ex.trades)


@router.get("/api/me/nonce", response_model=dict[str, int], responses=READ_ERRORS)
def my_nonce(who: Reader, ex: Live) -> dict[str, int]:
    """The last nonce I used (-1 before any): the next action must use a larger one."""
    return {"last_nonce": ex.verifier.last_nonce(who)}
