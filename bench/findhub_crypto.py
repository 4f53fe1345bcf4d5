"""Find Hub decryption cost: one crowdsourced (finder) report, one own report, one EID.

A finder report is ECIES on secp160r1, done in pure Python (two scalar multiplications,
a square root mod p), then HKDF and AES-EAX from ``cryptography``; an own report is one
AES-GCM. Each is run ``--runs`` times on the reference's vectors (§8) after a warm-up;
prints the median and the mean in µs per report.

    uv run python bench/findhub_crypto.py            # or: --runs 1000
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from gpshub_findhub.crypto import (
    compute_eid,
    decode_location,
    decrypt_eik,
    decrypt_finder_report,
    decrypt_own_report,
)

EIK = bytes(range(32))
T = 8704000
SX = bytes.fromhex("92038871819a59e7eee4011b8bff4b55dd3cd5d3")
FINDER_CT = bytes.fromhex(
    "189626bd0b6136dc102fad3db9d8ff539932135edee43817d168ace88b60d094063ee8687c"
)
OWN_REPORT = bytes.fromhex(
    "00000000000000000000000097c8a5abfd7573856c815397d5b3fb0c6a18af19e456aa043984d0eb"
)
OWNER_KEY = bytes(range(100, 132))
EIK_GCM = bytes.fromhex(
    "000102030405060708090a0b9faa3a4fb948c7ee951a94c39a9786bdf9062f833916c632df0bf310"
    "4ff15fff4fee80556fc8d5df0a6506fe396006a4"
)


def timed(runs: int, call: Callable[[], object]) -> list[float]:
    for _ in range(min(runs, 20)):
        call()
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        out.append((time.perf_counter() - start) * 1e6)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    assert decode_location(decrypt_finder_report(EIK, FINDER_CT, SX, T)) == (48.4, 9.9, -3)
    cases: list[tuple[str, Callable[[], object]]] = [
        (
            "finder report (secp160r1 ECIES + EAX + Location)",
            lambda: decode_location(decrypt_finder_report(EIK, FINDER_CT, SX, T)),
        ),
        (
            "own report (AES-GCM + Location)",
            lambda: decode_location(decrypt_own_report(EIK, OWN_REPORT)),
        ),
        ("EID (one scalar multiplication by G)", lambda: compute_eid(EIK, T)),
        ("EIK (AES-GCM under the owner key)", lambda: decrypt_eik(EIK_GCM, OWNER_KEY)),
    ]
    print(f"{args.runs} runs each, µs per call: median / mean")
    for name, call in cases:
        samples = timed(args.runs, call)
        print(f"  {name:52} {statistics.median(samples):9.1f} / {statistics.fmean(samples):9.1f}")


if __name__ == "__main__":
    main()
