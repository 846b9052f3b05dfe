"""bench_procs: starts, watches and stops every process of a benchmark run.

Promises: each process is started with its output in a log file under the run's output
directory and its command line recorded; a process still running when the run ends is
stopped by its pid (SIGTERM, then SIGKILL after a grace period), in the reverse order of
starting; children also get SIGTERM if bench/run itself dies (PR_SET_PDEATHSIG), so nothing
outlives a run. Ports come from the kernel (bind to port 0 on 127.0.0.1) and are never handed
out twice in one run.
"""
import ctypes
import os
import shlex
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)


class BenchError(Exception):
    """Something the benchmark needs is broken (a server did not start or died)."""


def _child_setup(nice):
    # Runs in the child between fork and exec; a benchmark must never leave servers behind.
    # The niceness is set here, before exec, so every thread the program starts inherits it
    # (renicing a running pid would reach its main thread only).
    def setup():
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if nice:
            os.setpriority(os.PRIO_PROCESS, 0, nice)
    return setup


class Proc:
    def __init__(self, name, argv, popen, log_path):
        self.name = name
        self.argv = argv
        self.popen = popen
        self.log_path = log_path

    @property
    def pid(self):
        return self.popen.pid

    def exited(self):
        return self.popen.poll() is not None


class Supervisor:
    def __init__(self, commands_path):
        self._procs = []
        self._ports = set()
        self._commands = open(commands_path, "a", encoding="utf-8")

    # ---- ports ----

    def free_port(self):
        for _ in range(100):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            if port not in self._ports:
                self._ports.add(port)
                return port
        raise BenchError("no free loopback port")

    # ---- processes ----

    def start(self, name, argv, log_path, env=None, cwd=None, stdout_path=None, nice=0):
        """Starts argv; stderr (and stdout unless stdout_path) go to log_path."""
        full_env = dict(os.environ)
        if env:
            full_env.update(env)
        env_txt = " ".join(f"{k}={shlex.quote(v)}" for k, v in (env or {}).items())
        self._commands.write(
            f"[{time.strftime('%H:%M:%S')}] {name}: {env_txt + ' ' if env_txt else ''}"
            f"{shlex.join(argv)}{' (cwd ' + cwd + ')' if cwd else ''}\n"
        )
        self._commands.flush()
        log = open(log_path, "ab")
        out = open(stdout_path, "wb") if stdout_path else log
        try:
            popen = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=log,
                env=full_env,
                cwd=cwd,
                preexec_fn=_child_setup(nice),
            )
        except OSError as e:
            raise BenchError(f"cannot start {name} ({argv[0]}): {e}") from e
        finally:
            log.close()
            if stdout_path:
                out.close()
        p = Proc(name, argv, popen, log_path)
        self._procs.append(p)
        return p

    def stop(self, p, grace_s=10.0):
        """Stops p if it still runs; returns its exit status."""
        if p.popen.poll() is None:
            p.popen.send_signal(signal.SIGTERM)
            try:
                p.popen.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                p.popen.kill()
                p.popen.wait()
        if p in self._procs:
            self._procs.remove(p)
        return p.popen.returncode

    def stop_many(self, procs, grace_s=10.0):
        """Signals all of procs at once (they shut down in parallel), newest first."""
        live = [p for p in reversed(procs) if p.popen.poll() is None]
        for p in live:
            p.popen.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for p in live:
            try:
                p.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.popen.kill()
                p.popen.wait()
        for p in procs:
            if p in self._procs:
                self._procs.remove(p)

    def stop_all(self):
        self.stop_many(list(self._procs))
        self._commands.close()

    # ---- readiness ----

    @staticmethod
    def check_alive(procs):
        for p in procs:
            rc = p.popen.poll()
            if rc is not None:
                raise BenchError(f"{p.name} (pid {p.pid}) exited with status {rc}; see {p.log_path}")

    def _wait(self, p, probe, timeout_s, what):
        """Polls probe() (True when ready; it may raise OSError) until p is ready; p dying or
        the timeout is a BenchError naming what was awaited and the last error seen."""
        deadline = time.monotonic() + timeout_s
        last = "no answer"
        while time.monotonic() < deadline:
            self.check_alive([p])
            try:
                if probe():
                    return
            except urllib.error.HTTPError as e:
                last = f"HTTP {e.code}"
            except OSError as e:
                last = str(e)
            time.sleep(0.05)
        raise BenchError(f"{p.name}: {what} not in {timeout_s:.0f} s ({last}); see {p.log_path}")

    def wait_tcp(self, p, port, timeout_s=20.0):
        def probe():
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        self._wait(p, probe, timeout_s, f"listening on 127.0.0.1:{port}")

    def wait_redis(self, p, port, timeout_s=20.0):
        def probe():
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        self._wait(p, probe, timeout_s, f"answering PING on port {port}")

    def wait_http_ok(self, p, url, timeout_s=30.0):
        def probe():
            with urllib.request.urlopen(url, timeout=1.0) as r:
                return r.status == 200
        self._wait(p, probe, timeout_s, f"{url} ready")


def rss_kib(pid):
    """Resident set size of pid in KiB, or None if it cannot be read."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None
