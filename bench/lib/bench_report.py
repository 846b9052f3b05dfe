"""bench_report: the machine facts and the markdown of a benchmark run.

Promises: facts are read from the machine (/proc, uname, the tools' own --version, git
read-only), never assumed; a fact that cannot be read is shown as "?". The table has one
column per system that ran, and ratios wsgate / reference, wsgate / node and wsgate / limit
(the C limit server: the box's own limit) where both figures exist. Each step's row gives
the CPU µs per delivered message of every process and the NATS messages per message.
"""
import datetime
import json
import os
import platform
import subprocess

from bench_systems import SYSTEM_LABELS


def _cmd(argv, cwd=None):
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=20, cwd=cwd)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    text = (out.stdout or out.stderr).strip()
    return text.splitlines()[0] if out.returncode == 0 and text else "?"


def _proc_field(path, key):
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith(key):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "?"


def _cmake_cache(build_dir, key):
    try:
        with open(os.path.join(build_dir, "CMakeCache.txt"), encoding="utf-8") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return line.split("=", 1)[1].strip() or "(empty)"
    except OSError:
        pass
    return "?"


def git_commit(root):
    commit = _cmd(["git", "rev-parse", "HEAD"], cwd=root)
    dirty = _cmd(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root)
    return commit + (" (with uncommitted changes)" if dirty not in ("?", "") else "")


def machine_facts(root, build_dir, python, node, node_dir):
    mem = _proc_field("/proc/meminfo", "MemTotal")
    try:
        mem = f"{int(mem.split()[0]) / 1048576:.1f} GiB"
    except (ValueError, IndexError):
        pass
    ws_version = "?"
    try:
        with open(os.path.join(node_dir, "node_modules", "ws", "package.json"), encoding="utf-8") as f:
            ws_version = json.load(f)["version"]
    except (OSError, ValueError, KeyError):
        pass
    py_libs = _cmd([python, "-c", "import aiohttp, redis; print('aiohttp', aiohttp.__version__, "
                    "'redis-py', redis.__version__)"])
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "nproc": os.cpu_count(),
        "cpu": _proc_field("/proc/cpuinfo", "model name"),
        "ram": mem,
        "kernel": f"{platform.system()} {platform.release()}",
        "git_commit": git_commit(root),
        "build": f"{build_dir} (CMAKE_BUILD_TYPE={_cmake_cache(build_dir, 'CMAKE_BUILD_TYPE')}, "
                 f"WSGATE_SANITIZE={_cmake_cache(build_dir, 'WSGATE_SANITIZE')})",
        "libwebsockets": _cmd(["pkg-config", "--modversion", "libwebsockets"]),
        "nats-server": _cmd(["nats-server", "--version"]),
        "redis-server": _cmd(["redis-server", "--version"]),
        "python": f"{_cmd([python, '--version'])}, {py_libs}",
        "node": f"{_cmd([node, '--version'])}, ws {ws_version}",
        "open-files limit": _cmd(["sh", "-c", "ulimit -Hn"]),
    }


def _fmt_num(v, unit):
    if v is None:
        return "—"
    if unit == "KiB":
        return f"{v:.2f} KiB"
    if unit == "B":
        return f"{v:,.0f} bytes"
    if unit == "ms":
        return f"{v:.1f} ms" if v >= 10 else f"{v:.2f} ms"
    if unit == "µs":
        return f"{v:.1f} µs" if v >= 10 else f"{v:.2f} µs"
    return f"{v:,.0f}{' ' + unit if unit else ''}"


def _ratio(a, b):
    if a is None or b is None or b == 0:
        return "—"
    r = a / b
    return f"{r:.2f}×" if r >= 0.1 else f"{r:.2g}×"


ROWS = [
    # key, label, unit, target
    ("mem_kib_per_conn", "gateway memory per idle connection", "KiB", "≤ 2.5 KiB"),
    ("handshake_p99_ms", "handshake p99 while {connect_conns:,} clients connect at "
     "{connect_rate:,}/s", "ms", "≤ 10 ms"),
    ("fanout_deliveries_per_s", "broadcast fan-out at {fanout_conns:,} connections, p99 < "
     "{fanout_p99_limit_ms} ms, nothing dropped (deliveries/s)", "", "≥ 1,000,000"),
    ("send_msgs_per_s", "send_message between random users at {send_conns:,} connections, "
     "p99 < {p99_limit_ms} ms, nothing dropped (msg/s)", "", "≥ 30,000"),
    ("channel_pubs_per_s", "channel publications at {channel_conns:,} connections, "
     "{channels:,} channels × {channel_subs:,} subscribers, p99 < {p99_limit_ms} ms, nothing "
     "missing (publications/s)", "", "—"),
    ("channel_bytes_per_sub", "gateway memory per channel subscription", "B", "≤ 256 bytes"),
    ("send_cpu_us_per_msg", "CPU per send_message, every server process (not the load "
     "generators), at the best passing send step", "µs", "≤ 40 µs"),
    ("fanout_cpu_us_per_delivery", "CPU per broadcast delivery, every server process, at the "
     "best passing fan-out step", "µs", "—"),
]

# The systems' columns, left to right; the ratio columns that follow them.
ORDER = ("ref", "node", "limit", "wsgate", "wsgate2r", "wsgate2s")
RATIOS = (("ref", "wsgate / reference"), ("node", "wsgate / node"), ("limit", "wsgate / limit"))


def table_markdown(results, systems, params):
    order = [s for s in ORDER if s in systems]
    ratios = [(o, title) for o, title in RATIOS if "wsgate" in order and o in order]
    head = ["measure"] + [SYSTEM_LABELS[s] for s in order] + [t for _, t in ratios]
    head.append("wsgate target")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key, label, unit, target in ROWS:
        row = [label.format(**params)]
        vals = {s: results.get(s, {}).get(key) for s in order}
        for s in order:
            cell = _fmt_num(vals[s], unit)
            note = results.get(s, {}).get(key + "_note")
            row.append(cell + (f" ({note})" if note else ""))
        for o, _ in ratios:
            row.append(_ratio(vals["wsgate"], vals[o]))
        row.append(target)
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    lines.append("Ratios are wsgate's figure divided by the other's: below 1 is better for memory, "
                 "latency and CPU, above 1 for throughput. wsgate / limit is the fraction of the "
                 "box's own limit (a one-thread C epoll server with no cluster and no history, "
                 "bench/ref/climit) that wsgate reaches.")
    return "\n".join(lines)


CPU_ROLES = ("gateway", "router", "nats-server", "redis-server", "aiohttp", "node", "climit")


def cpu_cell(st):
    """'gateway 12.0, router 5.1, nats-server 3.2, redis-server 2.0 (Σ 22.3); loadgen 8.1'."""
    cpu = st.get("cpu_us_per_delivery")
    if not cpu:
        return "—"
    roles = [r for r in CPU_ROLES if r in cpu] + sorted(
        r for r in cpu if r not in CPU_ROLES and r != "loadgen")
    parts = ", ".join(f"{r} {cpu[r]:.2f}" for r in roles)
    return (f"{parts} (Σ {st.get('cpu_us_per_delivery_system', 0):.2f})"
            + (f"; loadgen {cpu['loadgen']:.2f}" if "loadgen" in cpu else ""))


def steps_markdown(results, systems):
    out = []
    for s in systems:
        r = results.get(s, {})
        for key, title in (("fanout_steps", "broadcast fan-out"), ("send_steps", "send_message"),
                           ("channel_steps", "channel publications (offered and received: "
                            "deliveries to subscribers)")):
            steps = r.get(key)
            if not steps:
                continue
            out.append(f"**{SYSTEM_LABELS[s]}, {title} steps**\n")
            out.append("| rate (msg/s) | offered/s | received/s | p50 | p99 | max | "
                       "missing | dup | gateway CPU | NATS msgs in / out per message | "
                       "CPU µs per delivery: each process (servers' sum); load generators | "
                       "result |")
            out.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
            for st in steps:
                nats = (f"{st['nats_in_per_msg']:.2f} / {st['nats_out_per_msg']:.2f}"
                        if "nats_in_per_msg" in st else "—")
                out.append(
                    f"| {st['rate']:g} | {st.get('offered_per_s', 0):,.0f} | "
                    f"{st.get('received_per_s', 0):,.0f} | {_fmt_num(st.get('p50_ms'), 'ms')} | "
                    f"{_fmt_num(st.get('p99_ms'), 'ms')} | {_fmt_num(st.get('max_ms'), 'ms')} | "
                    f"{st.get('missing', '—')} | {st.get('duplicates', '—')} | "
                    f"{st.get('gateway_cpu_pct', 0):.0f} % | {nats} | {cpu_cell(st)} | "
                    f"{'pass' if st['ok'] else 'FAIL: ' + '; '.join(st['reasons'])}"
                    f"{' (repeat)' if 'retry_of' in st else ''} |"
                )
            out.append("")
    return "\n".join(out)


def connect_markdown(results, systems):
    out = ["| system | servers | welcomed | failed | handshake p50 / p99 / max (worst load "
           "generator) | gateway RSS growth | whole system RSS growth |",
           "|---|---|---|---|---|---|---|"]
    for s in systems:
        c = results.get(s, {}).get("connect")
        if not c:
            continue
        out.append(
            f"| {SYSTEM_LABELS[s]} | {c['servers']} | {c['welcomed']:,} | {c['failed']:,} | "
            f"{_fmt_num(c.get('p50_ms'), 'ms')} / {_fmt_num(c.get('p99_ms'), 'ms')} / "
            f"{_fmt_num(c.get('max_ms'), 'ms')} | "
            f"{_fmt_num(c.get('gateway_kib_per_conn'), 'KiB')}/conn | "
            f"{_fmt_num(c.get('system_kib_per_conn'), 'KiB')}/conn |"
        )
    return "\n".join(out)


def compression_markdown(comp):
    """permessage-deflate: idle memory with and without it, and one broadcast's wire bytes."""
    out = ["| measure | without compression | with permessage-deflate | difference | target |",
           "|---|---|---|---|---|"]
    p, d = comp.get("plain", {}), comp.get("deflate", {})
    pk, dk = p.get("gateway_kib_per_conn"), d.get("gateway_kib_per_conn")
    delta = comp.get("kib_per_conn_delta")
    out.append(f"| gateway memory per idle connection ({p.get('welcomed', 0):,} / "
               f"{d.get('welcomed', 0):,} held; {d.get('compressed_connections_max', 0):,} "
               f"negotiated) | {_fmt_num(pk, 'KiB')} | {_fmt_num(dk, 'KiB')} | "
               f"{'' if delta is None else f'{delta:+.2f} KiB'} | within 0.5 KiB |")
    w = comp.get("wire", {})
    if "saved" in w:
        out.append(f"| wire bytes of a ~2 KiB JSON broadcast ({w['plain_text_bytes']:,}-byte "
                   f"frame) | {w['plain_wire_bytes']:,} | {w['deflate_wire_bytes']:,} | "
                   f"{w['saved']:.0%} smaller | >= 50 % smaller |")
        out += ["", f"Negotiated: `{w['negotiated']}`."]
    elif w.get("error"):
        out += ["", f"Wire bytes not measured: {w['error']}"]
    return "\n".join(out)
