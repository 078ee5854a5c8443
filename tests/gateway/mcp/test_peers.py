"""gateway.mcp.peers: owner routes sealed into minted ids, and signed forwards (pure functions)."""

from __future__ import annotations

import pytest

from gateway.mcp import peers

KEY, OTHER = b"k" * 32, b"o" * 32


def test_a_sealed_route_opens_only_with_its_key_and_unaltered() -> None:
    route = peers.seal(KEY, "10.0.0.5:9100")
    assert peers.unseal(KEY, route) == "10.0.0.5:9100"
    assert peers.unseal(OTHER, route) is None
    head, mac = route.split(".")
    forged = peers.seal(OTHER, "10.0.0.6:9100").split(".")[0] + "." + mac  # another address, this MAC
    assert peers.unseal(KEY, forged) is None
    for bad in ("", ".", "abc", head, f"{head}.", f"{head}.!!", f"!!.{mac}"):
        assert peers.unseal(KEY, bad) is None


@pytest.mark.parametrize(("route", "ident"), [("", "mcpgw-state-NONCE"), ("R0.M0", "mcpgw-state-R0.M0.NONCE")])
def test_minted_ids_carry_their_route(route: str, ident: str) -> None:
    assert peers.mint("mcpgw-state-", route, "NONCE") == ident
    assert peers.route_of("mcpgw-state-", ident) == (route or None)


@pytest.mark.parametrize("ident", ["mcpgw-req-a.b.c", "mcpgw-state-a.b", "mcpgw-state-a.b.c.d", "other-a.b.c"])
def test_route_of_reads_only_the_three_part_form_of_its_prefix(ident: str) -> None:
    assert peers.route_of("mcpgw-state-", ident) is None


def test_a_forward_verifies_only_as_signed_and_in_its_window() -> None:
    header = peers.sign(KEY, 1000.0, "/peer/v1/resume", b"{}")
    assert peers.verify(KEY, 1000.0 + peers.WINDOW, "/peer/v1/resume", b"{}", header)
    assert not peers.verify(KEY, 1001.0 + peers.WINDOW, "/peer/v1/resume", b"{}", header)  # stale
    assert not peers.verify(KEY, 999.0 - peers.WINDOW, "/peer/v1/resume", b"{}", header)  # from the future
    assert not peers.verify(OTHER, 1000.0, "/peer/v1/resume", b"{}", header)
    assert not peers.verify(KEY, 1000.0, "/peer/v1/end", b"{}", header)  # another route
    assert not peers.verify(KEY, 1000.0, "/peer/v1/resume", b"{ }", header)  # another body
    for bad in (None, "", "1000", "x.y", "1000.", "-5." + header.split(".")[1]):
        assert not peers.verify(KEY, 1000.0, "/peer/v1/resume", b"{}", bad)


@pytest.mark.parametrize("stamp", ["\u00b2", "\u0661\u0660\u0660\u0660", "9" * 5000, "0" * 13, " 1000", "+1000"],
                         ids=["superscript", "arabic-indic", "5000-digits", "13-digits", "space", "sign"])
def test_a_stamp_is_at_most_twelve_ascii_digits_and_never_raises(stamp: str) -> None:
    mac = peers.sign(KEY, 1000.0, "/peer/v1/resume", b"{}").split(".")[1]
    assert not peers.fresh(1000.0, f"{stamp}.{mac}")
    assert not peers.verify(KEY, 1000.0, "/peer/v1/resume", b"{}", f"{stamp}.{mac}")


def test_fresh_checks_the_header_form_and_window_only() -> None:
    header = peers.sign(OTHER, 1000.0, "/any", b"body")
    assert peers.fresh(1000.0, header) and peers.fresh(1000.0 + peers.WINDOW, header)
    assert not peers.fresh(1001.0 + peers.WINDOW, header)
    assert not peers.fresh(1000.0, "1000.") and not peers.fresh(1000.0, None)


@pytest.mark.parametrize("quick", [True, False], ids=["quick", "round"])
async def test_a_forward_never_follows_a_redirect(quick: bool) -> None:
    import aiohttp
    from aiohttp import web

    hits: list[str] = []

    async def moved(request: web.Request) -> web.Response:
        hits.append(request.path)
        raise web.HTTPTemporaryRedirect("/elsewhere")  # 307: aiohttp would resend the body there

    app = web.Application()
    app.router.add_post("/peer/v1/answer", moved)
    app.router.add_post("/elsewhere", moved)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    link = peers.Peers(KEY, "127.0.0.1:1", aiohttp.ClientSession(), 65_536)
    try:
        address = f"127.0.0.1:{runner.addresses[0][1]}"
        async with link.post(address, "/peer/v1/answer", {"subject": "s"}, quick=quick) as resp:
            assert resp.status == 307
        assert hits == ["/peer/v1/answer"]
    finally:
        await link.close()
        await runner.cleanup()
