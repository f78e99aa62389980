"""Helpers shared by the live-agent tests."""

from __future__ import annotations

import httpx


def register_keys(url: str, keys: dict) -> None:
    import tests.service.conftest as c

    with httpx.Client(base_url=url) as client:
        for pid, k in keys.items():
            r = client.post("/api/participants", json={"participant": pid, "address": k.address},
                            headers={"Authorization": f"Bearer {c.TOKEN}"})
            assert r.status_code == 201
