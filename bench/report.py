"""The Markdown summary of one run: the figures the issue sets targets for, then the detail."""

from typing import Any, Optional

TARGETS = {
    "ttft_overhead_p50_ms": 30, "ttft_overhead_p99_ms": 60, "throughput_ratio": 0.9,
    "concurrency_sessions": 200, "concurrency_p99_gap_ms": 100, "burst_first_token_p99_ms": 1500,
    "turns_per_s": 50,
}


def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        value = f"{value:.2f}" if abs(value) < 10 else f"{value:.0f}"
    return f"{value}{unit}"


def _met(ok: Optional[bool]) -> str:
    return "-" if ok is None else ("yes" if ok else "**no**")


def _main_table(r: dict) -> list[str]:
    rows = ["| figure | system | direct | overhead / ratio | target | met |", "| --- | --- | --- | --- | --- | --- |"]
    if "ttft" in r:
        t = r["ttft"]
        for q, target in (("p50", TARGETS["ttft_overhead_p50_ms"]), ("p99", TARGETS["ttft_overhead_p99_ms"])):
            over = t["overhead"][f"{q}_ms"]
            rows.append(f"| TTFT {q} ({t['turns']} turns) | {_fmt(t['system'][f'{q}_ms'], ' ms')} | "
                        f"{_fmt(t['direct'][f'{q}_ms'], ' ms')} | +{_fmt(over, ' ms')} ({_fmt(t[f'ratio_{q}'])}x) | "
                        f"< {target} ms | {_met(None if over is None else over < target)} |")
    if "throughput" in r:
        t = r["throughput"]
        rows.append(f"| throughput, {t['tokens']:,}-token answer | {_fmt(t['system_median'], ' tok/s')} | "
                    f"{_fmt(t['direct_median'], ' tok/s')} | {_fmt(t['ratio'])}x | >= {TARGETS['throughput_ratio']}x | "
                    f"{_met(None if t['ratio'] is None else t['ratio'] >= TARGETS['throughput_ratio'])} |")
        if "plain_client" in t:
            p = t["plain_client"]
            mid = len(p["system"]) // 2
            ours, theirs = p["system"][mid], p["direct"][mid]
            rows.append(f"| the same, read by a plain SSE client (whole request) | "
                        f"{_fmt(ours['tokens_per_s'], ' tok/s')} ({ours['bytes_per_token']} B/token) | "
                        f"{_fmt(theirs['tokens_per_s'], ' tok/s')} ({theirs['bytes_per_token']} B/token) | "
                        f"{_fmt(p['ratio'])}x | >= {TARGETS['throughput_ratio']}x | "
                        f"{_met(p['ratio'] >= TARGETS['throughput_ratio'])} |")
    if "burst" in r:
        b = r["burst"]
        p99 = b["first_token"]["p99_ms"]
        rows.append(f"| {b['sessions']} sessions released at once: first token p50 / p99 | "
                    f"{_fmt(b['first_token']['p50_ms'])} / {_fmt(p99, ' ms')} | "
                    f"{_fmt(b['direct']['first_token']['p50_ms'])} / {_fmt(b['direct']['first_token']['p99_ms'], ' ms')} | "
                    f"- | < {TARGETS['burst_first_token_p99_ms']} ms | "
                    f"{_met(None if p99 is None else p99 < TARGETS['burst_first_token_p99_ms'])} |")
    if "turn_start" in r:
        c = r["turn_start"]["concurrent"]
        rows.append(f"| turn start, {c['concurrency']} in flight | {_fmt(c['turns_per_s'], ' turns/s')} | - | - | "
                    f">= {TARGETS['turns_per_s']} turns/s | {_met(c['turns_per_s'] >= TARGETS['turns_per_s'])} |")
    for level in r.get("concurrency", {}).get("levels", []):
        if level["sessions"] != TARGETS["concurrency_sessions"] or "cpu_us_per_token" not in level:
            continue
        cost = level["cpu_us_per_token"]
        rows.append(f"| CPU per streamed token, {level['sessions']} sessions (all of ours / the baseline) | "
                    f"{_fmt(cost['system'], ' us')} | {_fmt(cost['direct'], ' us')} | {_fmt(cost['ratio'])}x | <= 2x | "
                    f"{_met(None if cost['ratio'] is None else cost['ratio'] <= 2)} |")
    for level in r.get("concurrency", {}).get("levels", []):
        if level["sessions"] != TARGETS["concurrency_sessions"]:
            continue
        p99 = level["inter_token"]["p99_ms"]
        ok = p99 is not None and p99 < TARGETS["concurrency_p99_gap_ms"] and level["errors"] == 0
        rows.append(f"| {level['sessions']} sessions at {_fmt(level['tokens_per_s_each'])} tok/s: inter-token p99, "
                    f"errors | {_fmt(p99, ' ms')}, {level['errors']} errors | - | - | "
                    f"< {TARGETS['concurrency_p99_gap_ms']} ms, 0 errors | {_met(ok)} |")
    return rows


def _direct(d: Optional[dict]) -> str:
    if not d:
        return "-"
    return (f"{d['completed']}, {_fmt(d['inter_token']['p50_ms'])} / {_fmt(d['inter_token']['p99_ms'], ' ms')}, "
            f"{_fmt(d['first_token']['p99_ms'], ' ms')}, {_fmt(d['cpu_avg_pct']['baseline'], '%')}")


def _concurrency_table(levels: list[dict]) -> list[str]:
    rows = ["| sessions | completed | errors | peak streams | inter-token p50 / p99 | the same once all started | "
            "first token p50 / p99 | "
            "API CPU | worker CPU | Temporal CPU | Redis CPU | model CPU | machine CPU | saturated | "
            "direct baseline: completed, inter-token p50 / p99, first token p99, its CPU |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for level in levels:
        res = level["resources"]

        def cpu(name: str, res: dict = res) -> str:
            entry = res.get(name, {})
            return f"{_fmt(entry.get('cpu_avg_pct'), '%')} ({_fmt(entry.get('rss_peak_mb'), ' MB')})" \
                if name in ("API", "worker") else _fmt(entry.get("cpu_avg_pct"), "%")

        rows.append(
            f"| {level['sessions']} | {level['completed']} | {level['errors']} | {level['peak_concurrent_streams']} | "
            f"{_fmt(level['inter_token']['p50_ms'])} / {_fmt(level['inter_token']['p99_ms'], ' ms')} | "
            f"{_fmt(level['inter_token_after_all_started']['p50_ms'])} / "
            f"{_fmt(level['inter_token_after_all_started']['p99_ms'], ' ms')} | "
            f"{_fmt(level['first_token']['p50_ms'])} / {_fmt(level['first_token']['p99_ms'], ' ms')} | "
            f"{cpu('API')} | {cpu('worker')} | {cpu('temporal')} | {cpu('redis')} | {cpu('model server')} | "
            f"{_fmt(res['machine']['cpu_avg_pct'], '%')} ({_fmt(res['machine'].get('outside_stack_pct'), '%')} not ours) | "
            f"{', '.join(level['saturated']) or '-'} | {_direct(level.get('direct'))} |")
    return rows


def _start_table(t: dict) -> list[str]:
    busy = t["busy_session"]
    rows = ["| turn start | result |", "| --- | --- |"]
    for key in ("sequential", "concurrent"):
        s = t[key]
        busiest = ""
        if "resources" in s:
            top = sorted(((r.get("cpu_avg_pct") or 0, name) for name, r in s["resources"].items() if name != "machine"),
                         reverse=True)[:3]
            busiest = "; CPU " + ", ".join(f"{name} {pct:.0f}%" for pct, name in top)
        rows.append(f"| {s['turns']} turns, {s['concurrency']} at a time | {_fmt(s['turns_per_s'])} turns/s, "
                    f"start p50 {_fmt(s['start_latency']['p50_ms'], ' ms')}, p99 "
                    f"{_fmt(s['start_latency']['p99_ms'], ' ms')}{busiest} |")
    per_turn = t["concurrent"].get("cpu_ms_per_turn")
    if per_turn:
        rows.append("| CPU per turn, start to finish | " + ", ".join(f"{name} {ms_:g} ms" for name, ms_ in per_turn.items())
                    + " |")
    rows.append(f"| follow-up to a busy session (202) | p50 {_fmt(busy['queued_202']['p50_ms'], ' ms')}, p99 "
                f"{_fmt(busy['queued_202']['p99_ms'], ' ms')} ({busy['queued_202']['n']} messages) |")
    rows.append(f"| buffer full (429) | p50 {_fmt(busy['refused_429_buffer_full']['p50_ms'], ' ms')} "
                f"({busy['refused_429_buffer_full']['n']} messages) |")
    return rows


def _cost_table(c: dict) -> list[str]:
    rows = ["| history messages | tool rounds | first token | direct first token | turn | per round | "
            "first / last 3 tool rounds | workflow history |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for case in [*c["history"], *c["tool_rounds"], c["combined"]]:
        rows.append(f"| {case['history_messages']} | {case['tool_rounds']} | {_fmt(case['first_token_ms'], ' ms')} | "
                    f"{_fmt(case.get('direct_first_token_ms'), ' ms')} | {_fmt(case['turn_ms'], ' ms')} | "
                    f"{_fmt(case['per_round_ms'], ' ms')} | {_fmt(case.get('first_rounds_ms'))} / "
                    f"{_fmt(case.get('last_rounds_ms'), ' ms')} | {_fmt(case['workflow_history_events'])} events, "
                    f"{_fmt(case['workflow_history_kb'], ' KB')} |")
    return rows


def _workers_cpu(resources: dict) -> str:
    workers = [entry.get("cpu_avg_pct") or 0 for name, entry in resources.items() if name.startswith("worker")]
    return " + ".join(f"{pct:.0f}%" for pct in workers) if workers else "-"


def _scale_out_table(r: dict) -> list[str]:
    """The load benchmarks with 1 worker process and with more, side by side."""
    runs = {"1": r, **r.get("scale_out", {})}
    counts = list(runs)
    rows = ["| figure | " + " | ".join(f"{c} worker{'s' if c != '1' else ''}" for c in counts) + " |",
            "| --- |" + " --- |" * len(counts)]

    def row(label: str, cell) -> None:
        cells = []
        for count in counts:
            try:
                cells.append(cell(runs[count]))
            except (KeyError, TypeError):
                cells.append("-")
        rows.append(f"| {label} | " + " | ".join(cells) + " |")

    row("turn start, 25 in flight: turns/s (start p99)", lambda x: f"{_fmt(x['turn_start']['concurrent']['turns_per_s'])} "
        f"({_fmt(x['turn_start']['concurrent']['start_latency']['p99_ms'], ' ms')})")
    row("turn start: CPU of the workers, Temporal", lambda x: f"{_workers_cpu(x['turn_start']['concurrent']['resources'])}, "
        f"{_fmt(x['turn_start']['concurrent']['resources']['temporal']['cpu_avg_pct'], '%')}")
    row("burst: first token p50 / p99", lambda x: f"{_fmt(x['burst']['first_token']['p50_ms'])} / "
        f"{_fmt(x['burst']['first_token']['p99_ms'], ' ms')}")
    row("burst: CPU of the workers, Temporal", lambda x: f"{_workers_cpu(x['burst']['resources'])}, "
        f"{_fmt(x['burst']['resources']['temporal']['cpu_avg_pct'], '%')}")
    for index, level in enumerate(r.get("concurrency", {}).get("levels", [])):
        n = level["sessions"]
        row(f"{n} sessions at 50/s: completed, peak streams", lambda x, i=index: (
            f"{x['concurrency']['levels'][i]['completed']}, {x['concurrency']['levels'][i]['peak_concurrent_streams']}"))
        row(f"{n} sessions: first token p99, inter-token p99", lambda x, i=index: (
            f"{_fmt(x['concurrency']['levels'][i]['first_token']['p99_ms'], ' ms')}, "
            f"{_fmt(x['concurrency']['levels'][i]['inter_token']['p99_ms'], ' ms')}"))
        row(f"{n} sessions: CPU of the workers", lambda x, i=index: _workers_cpu(x['concurrency']['levels'][i]['resources']))
    return rows


def markdown(run: dict) -> str:
    r = run["results"]
    out = [f"Run {run['date']} on {run['machine']['description']}: `{run['command']}`", "", *_main_table(r)]
    if "concurrency" in r:
        out += ["", *_concurrency_table(r["concurrency"]["levels"])]
    if "turn_start" in r:
        out += ["", *_start_table(r["turn_start"])]
    if r.get("scale_out"):
        out += ["", *_scale_out_table(r)]
    if "cost_growth" in r:
        out += ["", *_cost_table(r["cost_growth"])]
    return "\n".join(out) + "\n"
