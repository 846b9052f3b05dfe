// hosts: simulated machines for one test file, made of Linux network namespaces. Each host is a
// namespace with its own loopback and one interface (eth0) on a private bridge in the test's
// own namespace, with an address of a /24 made for this test process; the test process reaches
// every host on the bridge, and the hosts reach each other. Processes run on a host through
// `ip netns exec` (which execs, so the PID is the process' own). A host can be cut off from
// another (nftables in the host's namespace drops both directions) and joined again.
// teardown() deletes the namespaces, the bridge and any rule it added; it also runs when the
// test process exits. Needs root (CI runs as root).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';

const IP = '/usr/sbin/ip';
const NFT = '/usr/sbin/nft';
const IPTABLES = '/usr/sbin/iptables';
const BRIDGE_NF = '/proc/sys/net/bridge/bridge-nf-call-iptables';

const run = (cmd, args, opts = {}) => execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts })
  .toString();

const active = new Set();
process.on('exit', () => { for (const h of active) h.teardownSync(); });

export class Hosts {
  // names: the hosts to make, e.g. ['nats-1', 'gw-a']. Addresses follow the order: .11, .12, ...
  constructor(names) {
    if (process.getuid?.() !== 0) throw new Error('hosts: network namespaces need root');
    for (const f of [IP, NFT]) if (!fs.existsSync(f)) throw new Error(`hosts: ${f} is missing (scripts/install-deps test)`);
    // one /24 per test process, so parallel runs never share addresses, and none the machine
    // already routes (a route other than the default one covers it)
    this.tag = `w${process.pid % 100000}`;
    for (let i = 0; ; i++) {
      const n = process.pid + i * 7919;
      this.net = `10.${200 + (n % 50)}.${Math.floor(n / 50) % 250}`;
      const routes = run(IP, ['-4', 'route', 'show', 'match', `${this.net}.1`]).split('\n')
        .filter((l) => l.trim() && !l.startsWith('default'));
      if (!routes.length) break;
      if (i === 20) throw new Error(`hosts: no free 10.x.y.0/24 (last tried ${this.net}.0/24: ${routes[0]})`);
    }
    this.bridge = `${this.tag}br`;
    this.gatewayIp = `${this.net}.1`;
    this.hosts = new Map();
    names.forEach((name, i) => {
      this.hosts.set(name, { name, ns: `${this.tag}-${name}`, ip: `${this.net}.${11 + i}`, veth: `${this.tag}v${i}` });
    });
    this.forwardRule = null;
  }

  setup() {
    active.add(this);
    try {
      run(IP, ['link', 'add', this.bridge, 'type', 'bridge']);
      run(IP, ['addr', 'add', `${this.gatewayIp}/24`, 'dev', this.bridge]);
      run(IP, ['link', 'set', this.bridge, 'up']);
      // With br_netfilter loaded (Docker loads it), bridged frames pass the root namespace's
      // iptables FORWARD chain, whose policy Docker sets to DROP: let this bridge's own through.
      if (fs.existsSync(BRIDGE_NF) && fs.readFileSync(BRIDGE_NF, 'utf8').trim() === '1' && fs.existsSync(IPTABLES)) {
        this.forwardRule = ['FORWARD', '-i', this.bridge, '-o', this.bridge, '-j', 'ACCEPT'];
        run(IPTABLES, ['-I', ...this.forwardRule]);
      }
      for (const h of this.hosts.values()) {
        run(IP, ['netns', 'add', h.ns]);
        run(IP, ['link', 'add', h.veth, 'type', 'veth', 'peer', 'name', `${h.veth}p`]);
        run(IP, ['link', 'set', `${h.veth}p`, 'netns', h.ns]);
        run(IP, ['link', 'set', h.veth, 'master', this.bridge]);
        run(IP, ['link', 'set', h.veth, 'up']);
        const inNs = (...a) => run(IP, ['netns', 'exec', h.ns, IP, ...a]);
        inNs('link', 'set', `${h.veth}p`, 'name', 'eth0');
        inNs('addr', 'add', `${h.ip}/24`, 'dev', 'eth0');
        inNs('link', 'set', 'eth0', 'up');
        inNs('link', 'set', 'lo', 'up');
        inNs('route', 'add', 'default', 'via', this.gatewayIp);
      }
    } catch (err) {
      this.teardownSync();
      throw new Error(`hosts: setup failed: ${err.stderr?.toString() ?? ''}${err.message}`);
    }
    return this;
  }

  host(name) {
    const h = this.hosts.get(name);
    if (!h) throw new Error(`hosts: no host ${name}`);
    return h;
  }

  ip(name) { return this.host(name).ip; }

  // The command line that runs cmd args on host name.
  wrap(name, cmd, args = []) {
    return { cmd: IP, args: ['netns', 'exec', this.host(name).ns, cmd, ...args] };
  }

  // Drops every packet between host `name` and each of `peers` (a host or a list; both
  // directions), until heal().
  partition(name, peers) {
    const h = this.host(name);
    const set = [peers].flat().map((p) => this.ip(p)).join(', ');
    const rules = `table inet wsgtest {
  chain input { type filter hook input priority 0; ip saddr { ${set} } drop; }
  chain output { type filter hook output priority 0; ip daddr { ${set} } drop; }
}
`;
    run(IP, ['netns', 'exec', h.ns, NFT, '-f', '-'], { input: rules, stdio: ['pipe', 'pipe', 'pipe'] });
  }

  heal(name) {
    run(IP, ['netns', 'exec', this.host(name).ns, NFT, 'delete', 'table', 'inet', 'wsgtest']);
  }

  teardownSync() {
    for (const h of this.hosts.values()) {
      try { run(IP, ['netns', 'del', h.ns]); } catch { /* not made, or gone */ }
      try { run(IP, ['link', 'del', h.veth]); } catch { /* went with the namespace */ }
    }
    try { run(IP, ['link', 'del', this.bridge]); } catch { /* not made */ }
    if (this.forwardRule) {
      try { run(IPTABLES, ['-D', ...this.forwardRule]); } catch { /* gone */ }
      this.forwardRule = null;
    }
    active.delete(this);
  }

  async teardown() { this.teardownSync(); }
}
