"""bench_loadgen: runs wsgate-loadgen for one benchmark step and reads what it reported.

A step needing more connections than one load generator may hold (18,000: the open-files
limit) is split over several processes started together, each with its own user prefix and
its own range of source addresses in 127.0.0.0/8; their connect rates add up to the step's.
Every process's JSON reports (stdout) and summary (stderr) are kept in the output directory.
While they run, the servers' RSS is sampled from /proc (and, for a system with NATS, the
message counters of nats-server's monitoring endpoint, and the CPU time of every server and
load generator: CPU per message per process), and the servers are watched: a
server that dies makes the step a BenchError, a load generator that overruns its time bound
is stopped and the step marked as timed out.
"""
import json
import os
import subprocess
import time
import urllib.request

from bench_procs import BenchError, rss_kib

LG_MAX_CONNS = 18000
SAMPLE_EVERY_S = 0.5


def split(conns, per_process):
    n = -(-conns // per_process)
    base, extra = divmod(conns, n)
    return [base + (1 if i < extra else 0) for i in range(n)]


def supports(loadgen, option):
    """Whether this build of the load generator knows a command-line option."""
    try:
        out = subprocess.run([loadgen, "--help"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return option in out.stdout + out.stderr


class Step:
    """One load-generator step: its processes, their reports and the servers' RSS."""

    def __init__(self, tag):
        self.tag = tag
        self.procs = []  # dicts: conns, rc, reports {scenario: obj}, json, log, timed_out
        self.baseline = {}  # {pid: KiB} just before the load generators started
        self.samples = []  # (monotonic s, {pid: KiB})
        self.nats = []  # (wall s, in_msgs, out_msgs) from nats-server's /varz
        self.cpu = []  # (wall s, {pid: CPU ticks}) of the servers and the load generators
        self.roles = {}  # pid -> what it is ("gateway", "router", "nats-server", "loadgen", ...)
        self.first_exit = None
        self.commands = []

    @property
    def rcs(self):
        return [p["rc"] for p in self.procs]

    @property
    def timed_out(self):
        return any(p["timed_out"] for p in self.procs)


def run_step(sup, loadgen, dep, outdir, tag, *, conns, per_process, connect_rate, scenario,
             hold=0.0, rate=None, duration=None, settle=None, drain=None, connect_timeout=30.0,
             extra=(), per_proc=None, time_bound_s):
    """per_proc(k), if given, returns more arguments for the k-th load generator."""
    step = Step(tag)
    counts = split(conns, per_process)
    pids = [p.pid for p in dep.all_procs]
    started = []
    step.baseline = {pid: rss_kib(pid) for pid in pids}
    for k, n in enumerate(counts):
        argv = [loadgen]
        for url in dep.urls:
            argv += ["--url", url]
        argv += [
            "--conns", str(n),
            "--connect-rate", f"{connect_rate * n / conns:g}",
            "--user-prefix", f"{tag}-{k}-",
            # A source address per 250 connections keeps far from the ephemeral-port limit.
            "--source-ips", f"127.0.{k + 1}.1-127.0.{k + 1}.250",
            "--scenario", scenario,
            "--hold", f"{hold:g}",
            "--connect-timeout", f"{connect_timeout:g}",
        ]
        if rate is not None:
            argv += ["--rate", f"{rate:g}", "--duration", f"{duration:g}",
                     "--settle", f"{settle:g}", "--drain", f"{drain:g}"]
        for pid in pids:
            argv += ["--server-pid", str(pid)]
        argv += list(extra)
        if per_proc:
            argv += per_proc(k)
        started.append(_start(sup, step, argv, outdir, tag, k, n))
    deadline = time.monotonic() + time_bound_s
    try:
        _wait(sup, dep, step, started, pids, deadline)
    finally:
        sup.stop_many(started, grace_s=10.0)
    _collect(step, started)
    return step


def broadcast_split(loadgen, dep, *, conns, receivers, connect_rate, rate, duration, drain,
                    prefix, ready_prefix, connect_timeout, run_timeout_s, server_pids):
    """The command lines of a client-sent broadcast run split over processes (see
    run_broadcast_split): [(receiver argv, its connections, its ready file)] and the
    publisher's argv, to start once every ready file exists. One run id ties them together."""
    run_id = (os.getpid() << 8 ^ int(time.time() * 1000)) % 4294967295 + 1
    common = ["--broadcast-via", "client", "--run-id", str(run_id), "--rate", f"{rate:g}",
              "--duration", f"{duration:g}", "--drain", f"{drain:g}"]
    receivers_argv = []
    for k, n in enumerate(split(conns, -(-conns // receivers))):
        argv = [loadgen]
        for url in dep.urls:
            argv += ["--url", url]
        ready_path = f"{ready_prefix}{k}.ready"
        argv += ["--conns", str(n), "--connect-rate", f"{connect_rate * n / conns:g}",
                 "--user-prefix", f"{prefix}-{k}-",
                 "--source-ips", f"127.0.{k + 1}.1-127.0.{k + 1}.250",
                 "--scenario", "connect,broadcast", "--hold", "0", "--settle", "0",
                 "--broadcast-role", "receive", "--connect-timeout", f"{connect_timeout:g}",
                 "--run-timeout", f"{run_timeout_s:g}", "--ready-file", ready_path] + common
        for pid in server_pids:
            argv += ["--server-pid", str(pid)]
        receivers_argv.append((argv, n, ready_path))
    publisher = [loadgen, "--url", dep.urls[0], "--conns", "0", "--user-prefix", f"{prefix}-pub-",
                 "--scenario", "broadcast", "--broadcast-role", "publish", "--settle", "0"]
    publisher += common
    if dep.nats_url:
        publisher += ["--nats", dep.nats_url]
    return receivers_argv, publisher


def run_broadcast_split(sup, loadgen, dep, outdir, tag, *, conns, receivers, connect_rate,
                        rate, duration, settle, drain, connect_timeout=30.0, time_bound_s):
    """A client-sent broadcast run split over processes: `receivers` load generators hold the
    connections and check every index (--broadcast-role receive), and once all of them are
    armed one more (--conns 0, --broadcast-role publish) writes the broadcast frames from its
    own connection. One process would have to read every delivery of a burst alone, and its
    reading time would be counted as the servers' latency."""
    step = Step(tag)
    pids = [p.pid for p in dep.all_procs]
    deadline = time.monotonic() + time_bound_s
    started, ready = [], []
    step.baseline = {pid: rss_kib(pid) for pid in pids}
    receivers_argv, publisher = broadcast_split(
        loadgen, dep, conns=conns, receivers=receivers, connect_rate=connect_rate, rate=rate,
        duration=duration, drain=drain, prefix=tag, ready_prefix=os.path.join(outdir, f"{tag}-lg"),
        connect_timeout=connect_timeout, run_timeout_s=time_bound_s, server_pids=pids)
    try:
        for k, (argv, n, ready_path) in enumerate(receivers_argv):
            started.append(_start(sup, step, argv, outdir, tag, k, n))
            ready.append(ready_path)
        while not all(os.path.exists(r) for r in ready):
            dep.check_alive()
            if any(p.exited() for p in started) or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        else:
            time.sleep(settle)
            started.append(_start(sup, step, publisher, outdir, tag, len(receivers_argv), 0))
        _wait(sup, dep, step, started, pids, deadline)
    finally:
        sup.stop_many(started, grace_s=10.0)
    _collect(step, started)
    return step


def _start(sup, step, argv, outdir, tag, k, n):
    base = os.path.join(outdir, f"{tag}-lg{k}")
    p = sup.start(f"loadgen {tag}#{k}", argv, base + ".log", stdout_path=base + ".json")
    step.commands.append(argv)
    step.procs.append({"conns": n, "rc": None, "reports": {}, "json": base + ".json",
                       "log": base + ".log", "timed_out": False})
    return p


def nats_counts(monitor):
    """nats-server's totals of messages in and out (every subject), or None."""
    try:
        with urllib.request.urlopen(monitor + "/varz", timeout=0.3) as r:
            v = json.loads(r.read())
        return v["in_msgs"], v["out_msgs"]
    except (OSError, ValueError, KeyError):
        return None


def window(samples, start_wall_s, end_wall_s):
    """The first and last of samples (tuples starting with a wall-clock time) inside
    [start, end], and the factor that scales what changed between them to the whole window;
    None with fewer than two samples inside."""
    inside = [x for x in samples if start_wall_s <= x[0] <= end_wall_s]
    if len(inside) < 2 or inside[-1][0] <= inside[0][0]:
        return None
    return inside[0], inside[-1], (end_wall_s - start_wall_s) / (inside[-1][0] - inside[0][0])


def nats_per_message(step, start_wall_s, end_wall_s, messages):
    """NATS messages in and out per message sent during [start, end] (wall clock). Only
    samples inside the window are used (connects before it and closes after it would count
    otherwise), scaled from the span they cover to the whole window; None with fewer than
    two samples inside."""
    w = window(step.nats, start_wall_s, end_wall_s)
    if not messages or not w:
        return None
    (_, i0, o0), (_, i1, o1), scale = w
    return (i1 - i0) * scale / messages, (o1 - o0) * scale / messages


CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_ticks(pid):
    """utime + stime of pid in clock ticks (/proc/PID/stat), or None."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # fields 14 and 15 of stat(5)
    except (OSError, ValueError, IndexError):
        return None


def role_of(system, proc_name):
    """What a process of a deployment is, from its name ("wsgate/router-2" -> "router")."""
    part = proc_name.split("/", 1)[-1]
    head, _, tail = part.rpartition("-")
    role = head if tail.isdigit() else part
    if role == "redis":
        role = "redis-server"
    if role in ("gateway", "server"):
        role = {"ref": "aiohttp", "node": "node", "limit": "climit"}.get(system, role)
    return role


def cpu_us_per_message(step, start_wall_s, end_wall_s, messages):
    """CPU µs per message of every role (processes of one role summed) during [start, end]
    (wall clock), from the samples inside the window scaled to the whole window, like the
    NATS counts; {} with fewer than two samples inside. A process that could not be read at
    both ends of the span is left out."""
    w = window(step.cpu, start_wall_s, end_wall_s)
    if not messages or not w:
        return {}
    (_, a), (_, b), scale = w
    out = {}
    for pid, role in step.roles.items():
        if a.get(pid) is None or b.get(pid) is None:
            continue
        us = (b[pid] - a[pid]) / CLK_TCK * 1e6 * scale / messages
        out[role] = out.get(role, 0.0) + us
    return out


def _wait(sup, dep, step, started, pids, deadline):
    for p in dep.all_procs:
        step.roles[p.pid] = role_of(dep.name, p.name)
    for p in started:
        step.roles[p.pid] = "loadgen"
    while any(not p.exited() for p in started):
        now = time.monotonic()
        step.samples.append((now, {pid: rss_kib(pid) for pid in pids}))
        step.cpu.append((time.time(), {pid: cpu_ticks(pid) for pid in step.roles}))
        if dep.nats_monitor:
            c = nats_counts(dep.nats_monitor)
            if c:
                step.nats.append((time.time(), c[0], c[1]))
        if step.first_exit is None and any(p.exited() for p in started):
            step.first_exit = now
        dep.check_alive()
        if now > deadline:
            for p, info in zip(started, step.procs):
                info["timed_out"] = not p.exited()
            sup.stop_many(started, grace_s=10.0)
            break
        time.sleep(SAMPLE_EVERY_S)
    if step.first_exit is None:
        step.first_exit = time.monotonic()


def _collect(step, started):
    for p, info in zip(started, step.procs):
        info["rc"] = p.popen.returncode
        info["reports"] = read_reports(info["json"])


def read_reports(path):
    """A load generator's JSON reports (its stdout), by scenario."""
    reports = {}
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                try:
                    obj = json.loads(line)
                except ValueError:
                    continue
                if isinstance(obj, dict) and "scenario" in obj:
                    reports[obj["scenario"]] = obj
    except OSError as e:
        raise BenchError(f"cannot read the load generator's report {path}: {e}") from e
    return reports


def idle_rss(step, pids, settle_before_exit_s=1.0):
    """Total RSS (KiB) of pids while every connection was held idle: the last sample taken
    at least settle_before_exit_s before the first load generator left (and closed its
    connections), or None."""
    best = None
    for t, rss in step.samples:
        if t <= step.first_exit - settle_before_exit_s and all(rss.get(p) for p in pids):
            best = sum(rss[p] for p in pids)
    return best
