"""Masking a backend's successful answer (gateway/masking.py): µs per answer, in-process.

Run: .venv/bin/python bench/bench_masking.py [--quick]

A server with a credential has every answer checked (`masked_response`: the result serialised, then
`leaks`' `in` checks; or the checks alone on the JSON text a relay already holds) before it reaches
an agent; a server without one is not checked. Prints µs per answer for a typical tools/call
answer (one text item), a 64 KiB one and 64 KiB of prose (every character of the credential's forms
met often: the slow case of masking_scan.py), clean (no trace of the credential: the usual case, not
rewritten) and leaking (scrubbed), and the ratio of the clean check to the JSON decode of the same
answer measured in the same run (what every relayed answer costs already).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.timing import best_of  # noqa: E402
from gateway.backend_auth import AuthConfig  # noqa: E402
from gateway.masking import credential_forms, masked_response  # noqa: E402
from shared.jsonutil import dumps, loads  # noqa: E402

BEARER = AuthConfig(method="bearer", name="Authorization", format="prefix", prefix="Bearer ")
FORMS = credential_forms(BEARER, "tok-fwd-7f3a9c2e-Zq8vN2kLp")


def answer(text: str) -> dict[str, object]:
    """A tools/call answer with one text item."""
    return {"jsonrpc": "2.0", "id": 7, "result": {"content": [{"type": "text", "text": text}], "isError": False}}


def row(name: str, message: dict[str, object], n: int) -> str:
    """One printed line: µs per answer of each case, and the clean check against the decode."""
    raw = dumps(message)
    leaking = answer(message["result"]["content"][0]["text"] + " Bearer tok-fwd-7f3a9c2e-Zq8vN2kLp")  # type: ignore[index]
    assert masked_response(message, FORMS) is message and masked_response(leaking, FORMS) is not leaking
    decode = best_of(lambda: loads(raw), n)
    none = best_of(lambda: masked_response(message, []), n)
    clean = best_of(lambda: masked_response(message, FORMS), n)
    clean_raw = best_of(lambda: masked_response(message, FORMS, raw), n)
    leak = best_of(lambda: masked_response(leaking, FORMS), n)
    return (f"{name:<8} {decode:>10.2f} {none:>14.2f} {clean:>9.2f} {clean_raw:>14.2f} {leak:>11.2f} "
            f"{clean / decode:>12.2f}x {clean_raw / decode:>16.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    number = 2_000 if parser.parse_args().quick else 20_000
    print(f"{'answer':<8} {'decode µs':>10} {'no credential':>14} {'clean µs':>9} {'clean, raw µs':>14} "
          f"{'leaking µs':>11} {'clean/decode':>13} {'clean raw/decode':>17}")
    print(row("small", answer("sunny, 21.5 °C in Lisbon"), number))
    print(row("64KiB", answer("weather report line\n" * 3277), number // 20))
    # Prose: every letter occurs, so each form's rarest character (its anchor) is met often.
    prose = ("The quick brown fox jumps over the lazy dog; 42 vexing wizards quietly judge the box.\n" * 760)[:65536]
    print(row("prose", answer(prose), number // 20))


if __name__ == "__main__":
    main()
