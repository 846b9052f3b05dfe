"""bench_systems: how each system under test is started on loopback for one scenario.

A system is deployed fresh for each group of scenarios with a given number of gateway
processes (each on its own free port, so the load generator spreads connections over them
evenly and no process passes the open-files limit). A deployment says which URLs clients
use, which pids are gateways (the "gateway memory" of the table) and which pids are the
whole system (gateways plus router, NATS, Redis), and stops everything it started.

Systems:
  wsgate  nats-server (with its monitoring port), redis-server, wsgate-router,
          N x wsgate-gateway (auth off, admission limits off for load)
  wsgate2r  the same with two wsgate-router replicas sharing the load (issue #4: 1 vs 2)
  wsgate2s  wsgate with the history on two more redis-servers (WSGATE_REDIS_SHARDS; the
          registry stays on the first): issue #17's 1 vs 2 shards
  ref     redis-server, N x bench/ref/aiohttp_gateway.py (the reference design)
  node    N x bench/ref/node-ws/server.mjs (independent processes: only for connect runs
          above one process's open-files limit)
  limit   N x build/wsgate-climit (bench/ref/climit/: one epoll thread, in-process fan-out,
          no cluster, no history): the box's own limit, that wsgate's figures are a fraction
          of (independent processes only where node has them too)

Channels (the channel row) need nothing more: wsgate's default namespace (no
WSGATE_CHANNEL_NAMESPACES) accepts the load generator's bench-N names, WSGATE_AUTH=none
allows subscribe and publish, WSGATE_INBOUND_RATE=0 lets a connection publish more than 50/s,
and one subscription per connection stays far below WSGATE_MAX_CHANNELS_PER_CONN.
"""
import os
import shutil
import subprocess

from bench_procs import BenchError

SYSTEM_LABELS = {
    "ref": "reference design (Python aiohttp + Redis)",
    "node": "Node.js ws, one process",
    "wsgate": "wsgate",
    "wsgate2r": "wsgate, 2 routers",
    "wsgate2s": "wsgate, 2 Redis shards",
    "limit": "C limit server (epoll, one thread)",
}


class Deployment:
    def __init__(self, sup, name):
        self.sup = sup
        self.name = name
        self.urls = []
        self.gateways = []  # Proc
        self.infra = []  # Proc: router, NATS, Redis
        self.nats_url = None
        self.nats_monitor = None  # http://host:port of nats-server's monitoring endpoint
        self.metrics_urls = {}  # pid -> /metrics URL of a wsgate process (routers; gateways if admin)
        self.notes = []

    @property
    def gateway_pids(self):
        return [p.pid for p in self.gateways]

    @property
    def all_procs(self):
        return self.infra + self.gateways

    def check_alive(self):
        self.sup.check_alive(self.all_procs)

    def stop(self):
        # Gateways first (they drain), then what they depend on.
        self.sup.stop_many(self.gateways)
        self.sup.stop_many(self.infra)


def _redis(sup, dep, logdir, tag, label="redis"):
    port = sup.free_port()
    workdir = os.path.join(logdir, f"{tag}-{label}-data")
    os.makedirs(workdir, exist_ok=True)
    p = sup.start(
        f"{dep.name}/{label}",
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", workdir, "--daemonize", "no"],
        os.path.join(logdir, f"{tag}-{label}.log"),
    )
    dep.infra.append(p)
    sup.wait_redis(p, port)
    return port


def _servers(sup, dep, n, label, argv_for, logdir, tag, cwd=None):
    """Starts n gateway processes, each on a free port (argv_for(i, port)), records their
    ws:// URLs and waits until each listens."""
    ports = []
    for i in range(n):
        port = sup.free_port()
        dep.gateways.append(sup.start(f"{dep.name}/{label}-{i + 1}", argv_for(i, port),
                                      os.path.join(logdir, f"{tag}-{label}-{i + 1}.log"),
                                      cwd=cwd))
        dep.urls.append(f"ws://127.0.0.1:{port}/ws")
        ports.append(port)
    for gw, port in zip(dep.gateways, ports):
        sup.wait_tcp(gw, port)


class WsgateSystem:
    def __init__(self, build_dir, routers=1, shards=0):
        self.name = ("wsgate" if routers == 1 else f"wsgate{routers}r") + \
            (f"{shards}s" if shards else "")
        self.routers = routers
        self.shards = shards
        self.gateway = os.path.join(build_dir, "wsgate-gateway")
        self.router = os.path.join(build_dir, "wsgate-router")

    def check(self):
        for exe in (self.gateway, self.router):
            if not os.access(exe, os.X_OK):
                raise BenchError(f"{exe} is missing: build first (scripts/build, or --build DIR)")
        for tool in ("nats-server", "redis-server"):
            if not shutil.which(tool):
                raise BenchError(f"{tool} is not installed (scripts/install-deps)")

    def deploy(self, sup, n_gateways, logdir, tag, admin=False):
        """admin: give each gateway an admin listener (dep.admin_urls: its /metrics)."""
        dep = Deployment(sup, self.name)
        dep.admin_urls = []
        try:
            nats_port, mon_port = sup.free_port(), sup.free_port()
            nats = sup.start(
                "wsgate/nats-server",
                ["nats-server", "-a", "127.0.0.1", "-p", str(nats_port), "-m", str(mon_port)],
                os.path.join(logdir, f"{tag}-nats.log"),
            )
            dep.infra.append(nats)
            sup.wait_tcp(nats, nats_port)
            dep.nats_url = f"nats://127.0.0.1:{nats_port}"
            dep.nats_monitor = f"http://127.0.0.1:{mon_port}"
            redis_port = _redis(sup, dep, logdir, tag)
            shard_ports = [_redis(sup, dep, logdir, tag, f"redis-shard-{k}")
                           for k in range(self.shards)]
            shards_env = {"WSGATE_REDIS_SHARDS": " ".join(
                f"redis://127.0.0.1:{p}" for p in shard_ports)} if shard_ports else {}
            for r in range(self.routers):
                http_port = sup.free_port()
                router = sup.start(
                    f"{self.name}/router-{r + 1}",
                    [self.router],
                    os.path.join(logdir, f"{tag}-router-{r + 1}.log"),
                    env={
                        "WSGATE_NODE_ID": f"router-{r + 1}",
                        "WSGATE_NATS_URL": dep.nats_url,
                        "WSGATE_REDIS_URL": f"redis://127.0.0.1:{redis_port}",
                        "WSGATE_HTTP_LISTEN": f"127.0.0.1:{http_port}",
                        **shards_env,
                    },
                )
                dep.infra.append(router)
                dep.metrics_urls[router.pid] = f"http://127.0.0.1:{http_port}/metrics"
                sup.wait_http_ok(router, f"http://127.0.0.1:{http_port}/ready")
            for i in range(n_gateways):
                port = sup.free_port()
                extra = {}
                if admin:
                    aport = sup.free_port()
                    extra["WSGATE_ADMIN_LISTEN"] = f"127.0.0.1:{aport}"
                    dep.admin_urls.append(f"http://127.0.0.1:{aport}/metrics")
                gw = sup.start(
                    f"{self.name}/gateway-{i + 1}",
                    [self.gateway],
                    os.path.join(logdir, f"{tag}-gateway-{i + 1}.log"),
                    env={
                        "WSGATE_NODE_ID": f"gw-{i + 1}",
                        "WSGATE_LISTEN": f"127.0.0.1:{port}",
                        "WSGATE_NATS_URL": dep.nats_url,
                        "WSGATE_AUTH": "none",
                        "WSGATE_ACCEPT_RATE": "0",
                        "WSGATE_INBOUND_RATE": "0",
                        "WSGATE_IP_CONN_LIMIT": "0",
                        "WSGATE_DRAIN_SECONDS": "1s",
                        **extra,
                    },
                )
                dep.gateways.append(gw)
                if admin:
                    dep.metrics_urls[gw.pid] = dep.admin_urls[-1]
                dep.urls.append(f"ws://127.0.0.1:{port}/ws")
                sup.wait_http_ok(gw, f"http://127.0.0.1:{port}/ready")
        except BaseException:
            dep.stop()
            raise
        dep.notes.append(
            f"{n_gateways} gateway process(es) (workers = cores each), {self.routers} "
            f"router(s), NATS, Redis" + (f" (registry) + {self.shards} Redis history shards"
                                        if self.shards else "")
        )
        return dep


class RefSystem:
    name = "ref"

    def __init__(self, bench_dir, python):
        self.script = os.path.join(bench_dir, "ref", "aiohttp_gateway.py")
        self.python = python

    def check(self):
        if not shutil.which("redis-server"):
            raise BenchError("redis-server is not installed (scripts/install-deps)")
        probe = subprocess.run(
            [self.python, "-c", "import aiohttp, redis"], capture_output=True, text=True
        )
        if probe.returncode != 0:
            raise BenchError(
                "the reference gateway needs Debian's python3-aiohttp and python3-redis "
                f"(apt-get install python3-aiohttp python3-redis): {probe.stderr.strip()}"
            )

    def deploy(self, sup, n_gateways, logdir, tag):
        dep = Deployment(sup, self.name)
        try:
            redis_port = _redis(sup, dep, logdir, tag)
            _servers(sup, dep, n_gateways, "gateway",
                     lambda i, port: [self.python, self.script, "--port", str(port),
                                      "--node-id", f"ref-{i + 1}",
                                      "--redis-url", f"redis://127.0.0.1:{redis_port}/0"],
                     logdir, tag)
        except BaseException:
            dep.stop()
            raise
        dep.notes.append(f"{n_gateways} aiohttp process(es) (one asyncio loop each), Redis")
        return dep


class NodeSystem:
    name = "node"

    def __init__(self, bench_dir, node):
        self.dir = os.path.join(bench_dir, "ref", "node-ws")
        self.node = node

    def check(self):
        if not shutil.which(self.node):
            raise BenchError(f"{self.node} is not installed")
        if not os.path.isdir(os.path.join(self.dir, "node_modules", "ws")):
            raise BenchError(f"{self.dir}/node_modules is missing (npm ci)")

    def deploy(self, sup, n_gateways, logdir, tag):
        dep = Deployment(sup, self.name)
        try:
            _servers(sup, dep, n_gateways, "server",
                     lambda i, port: [self.node, "server.mjs", "--port", str(port),
                                      "--node-id", f"node-{i + 1}"],
                     logdir, tag, cwd=self.dir)
        except BaseException:
            dep.stop()
            raise
        if n_gateways > 1:
            dep.notes.append(
                f"{n_gateways} independent Node processes on separate ports: one process must "
                "hold fewer sockets than the open-files limit allows"
            )
        else:
            dep.notes.append("1 Node process")
        return dep


class LimitSystem:
    """The box's own limit (issue 15): bench/ref/climit, one thread, no cluster, no history."""
    name = "limit"

    def __init__(self, build_dir):
        self.exe = os.path.join(build_dir, "wsgate-climit")

    def check(self):
        if not os.access(self.exe, os.X_OK):
            raise BenchError(f"{self.exe} is missing: build first (scripts/build, or --build DIR)")

    def deploy(self, sup, n_gateways, logdir, tag):
        dep = Deployment(sup, self.name)
        try:
            _servers(sup, dep, n_gateways, "server",
                     lambda i, port: [self.exe, "--port", str(port), "--node-id",
                                      f"climit-{i + 1}"],
                     logdir, tag)
        except BaseException:
            dep.stop()
            raise
        dep.notes.append(f"{n_gateways} wsgate-climit process(es), one epoll thread each"
                         + (" (independent: one process must hold fewer sockets than the "
                            "open-files limit allows)" if n_gateways > 1 else ""))
        return dep
