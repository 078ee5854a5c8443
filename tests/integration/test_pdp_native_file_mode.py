"""`mcpgw pdp serve --casbin-model FILE --casbin-policy FILE` as a real process: the Todo vectors
over HTTP, edits to the policy file served, an invalid edit refused (the last good pair stays)."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import aiohttp

from tests.integration.pdp_helpers import eventually
from tests.integration.pdp_process import MCPGW, PdpProcess, _wait_ready, clean_env, free_port

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "authzen-todo"
VECTORS = json.loads((EXAMPLE / "decisions-1.0-implementers-draft.json").read_text())["evaluation"]
BETH = "CiRmZDM2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs"


async def test_serve_native_pair_from_files(tmp_path):
    model, policy = tmp_path / "model.conf", tmp_path / "policy.csv"
    shutil.copy(EXAMPLE / "model.conf", model)
    shutil.copy(EXAMPLE / "policy.csv", policy)
    port = free_port()
    log = tmp_path / "pdp.log"
    env = clean_env(MCPGW_DATA_DIR=str(tmp_path), MCPGW_AUDIT_POSTGRES="false", MCPGW_LOG_FORMAT="text",
                    MCPGW_PDP_WATCH_INTERVAL="0.05", MCPGW_PDP_WATCH_SETTLE="0.05")
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            MCPGW, "pdp", "serve", "--host", "127.0.0.1", "--port", port, "--casbin-model", str(model),
            "--casbin-policy", str(policy), env=env, stdout=out, stderr=out)
    pdp = PdpProcess(proc, f"http://127.0.0.1:{port}", log)
    try:
        await _wait_ready(pdp)
        async with aiohttp.ClientSession() as session:
            async def decide(request: dict) -> bool:
                async with session.post(pdp.url + "/access/v1/evaluation", json=request) as resp:
                    assert resp.status == 200, await resp.text()
                    return bool((await resp.json())["decision"])

            assert [await decide(v["request"]) for v in VECTORS] == [v["expected"] for v in VECTORS]
            beth_reads = next(v["request"] for v in VECTORS
                              if v["request"]["subject"]["id"] == BETH and v["request"]["action"]["name"] == "can_read_todos")
            text = policy.read_text()
            policy.write_text(text.replace(f"g, {BETH}, viewer\n", ""))  # Beth loses her role

            async def beth_denied() -> bool:
                return not await decide(beth_reads)

            await eventually(beth_denied)
            policy.write_text(text + "p, viewer\n")  # invalid: refused, the last good pair stays
            await eventually(lambda: _logged(log, "policy file"))
            assert not await decide(beth_reads)
    finally:
        proc.terminate()
        await proc.wait()


async def _logged(log: Path, fragment: str) -> bool:
    text = await asyncio.to_thread(log.read_text)
    return fragment in text and "rejected" in text
