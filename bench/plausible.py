"""Check every counterexample of a run against limits every kernel has.

    khospec check spec/ --format json > run.json
    python bench/plausible.py run.json

A counterexample is plausible when its memory, zones and chunks lie below 2^52 bytes
(the largest MAX_PHYSMEM_BITS of x86_64 and arm64), its chunks have an order a format
can record below that (order <= 52 - PAGE_SHIFT), and its node ids are below 1024
(the largest MAX_NUMNODES, NODES_SHIFT 10), and the struct pages a failed requirement
reads lie between the layout's first and last pfn. A replay is exact when it says "confirmed"
with no quantifier evaluated only at sampled numbers. Prints one line per finding and a
summary; exits 1 when a refutation is implausible or a replay is not exact.
"""

from __future__ import annotations

import json
import sys
from typing import Any

PHYS_BITS = 52
MAX_NODES = 1024


def findings(r: dict[str, Any]) -> list[str]:
    cx = r["counterexample"]
    ps = int(cx.get("params", {}).get("PAGE_SHIFT", 12))
    limit = 1 << (PHYS_BITS - ps)
    out = []
    layout = cx.get("layout") or {}
    for node in layout.get("nodes", []):
        if not 0 <= node["nid"] < MAX_NODES:
            out.append(f"node id {node['nid']}")
        for rg in node["ranges"]:
            if int(rg["end_pfn"], 16) > limit:
                out.append(f"memory up to pfn {rg['end_pfn']}")
    for z in layout.get("zones", []):
        if int(z["end_pfn"], 16) > limit:
            out.append(f"zone {z['zone']} up to pfn {z['end_pfn']}")
    spans = [(int(rg["start_pfn"], 16), int(rg["end_pfn"], 16))
             for node in layout.get("nodes", []) for rg in node["ranges"]]
    for read in (cx.get("violated") or {}).get("reads", []):
        pfn = int(read["pfn"], 16)
        if spans and not min(a for a, _ in spans) <= pfn < max(b for _, b in spans):
            out.append(f"{read['read']} reads the struct page of pfn {read['pfn']}, outside the layout")
    for c in cx.get("chunks", []):
        if c["order"] > PHYS_BITS - ps:
            out.append(f"chunk {c['name']} of order {c['order']}")
        elif int(c["pfn"], 16) + (1 << c["order"]) > limit:
            out.append(f"chunk {c['name']} ending above 2^{PHYS_BITS} bytes")
    return out


def main(argv: list[str]) -> int:
    with open(argv[1], encoding="utf-8") as f:
        results = json.load(f)["results"]
    refuted = [r for r in results if r["verdict"] == "refuted"]
    implausible = exact = 0
    for r in refuted:
        name = f"{r['file']}:{r['line']} {r['check']} [{r['strategy'] or '-'}] {r['profile'] or '-'}"
        bad = findings(r)
        if bad:
            implausible += 1
            print(f"implausible: {name}: {', '.join(bad)}")
        if r.get("replay") == "confirmed":
            exact += 1
        else:
            print(f"replay: {name}: {r.get('replay')}")
    print(f"{len(refuted) - implausible}/{len(refuted)} plausible, {exact}/{len(refuted)} exact replays")
    return 1 if implausible or exact < len(refuted) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
