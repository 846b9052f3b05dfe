// The Grafana dashboard (deploy/grafana/wsgate.json) and compose's Grafana provisioning
// (deploy/grafana/provisioning), checked for the structure Grafana needs to load them: no
// Grafana package exists in Debian to run its own schema check, so its rules for a dashboard
// of schemaVersion 36+ are checked here (what prometheus.test.mjs does not: it evaluates the
// expressions). A panel off the 24-column grid, two panels on the same cells, a target without
// a refId or with a duplicate one, a panel bound to another data source than the dashboard's
// variable, a provisioning file pointing elsewhere than compose mounts the dashboard: each
// fails here.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const DASHBOARD = path.join(ROOT, 'deploy/grafana/wsgate.json');
const PANEL_TYPES = new Set(['timeseries', 'stat', 'gauge', 'bargauge', 'table', 'heatmap',
  'text', 'row', 'piechart', 'histogram', 'state-timeline', 'status-history']);

// A YAML file as JSON, by Debian's python3-yaml (the test needs no npm YAML package).
function yamlFile(rel) {
  const out = execFileSync('/usr/bin/python3', ['-c',
    'import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))',
    path.join(ROOT, rel)], { encoding: 'utf8' });
  return JSON.parse(out);
}

// The problems of a dashboard, as sentences; [] when Grafana can load it as intended.
function dashboardProblems(d) {
  const bad = [];
  const isInt = (v) => Number.isInteger(v) && v >= 0;
  if (typeof d.title !== 'string' || !d.title) bad.push('no title');
  if (typeof d.uid !== 'string' || !/^[A-Za-z0-9_-]{1,40}$/.test(d.uid)) bad.push(`uid ${d.uid}`);
  if (!Number.isInteger(d.schemaVersion) || d.schemaVersion < 36) bad.push(`schemaVersion ${d.schemaVersion}`);
  if (!Array.isArray(d.panels) || d.panels.length === 0) return [...bad, 'no panels'];
  const vars = d.templating?.list ?? [];
  const dsVar = vars.find((v) => v.name === 'datasource');
  if (!dsVar || dsVar.type !== 'datasource' || dsVar.query !== 'prometheus') {
    bad.push('no datasource variable of type prometheus');
  }
  const ids = new Set();
  const cells = new Map();
  for (const p of d.panels) {
    const name = `panel ${p.id} (${p.title})`;
    if (!isInt(p.id) || ids.has(p.id)) bad.push(`${name}: id missing or repeated`);
    ids.add(p.id);
    if (!PANEL_TYPES.has(p.type)) bad.push(`${name}: type ${p.type}`);
    if (typeof p.title !== 'string' || !p.title) bad.push(`${name}: no title`);
    const g = p.gridPos ?? {};
    if (![g.x, g.y, g.w, g.h].every(isInt) || g.w < 1 || g.h < 1 || g.x + g.w > 24) {
      bad.push(`${name}: gridPos ${JSON.stringify(g)} off the 24-column grid`);
    } else {
      for (let y = g.y; y < g.y + g.h; y++) {
        for (let x = g.x; x < g.x + g.w; x++) {
          const k = `${x},${y}`;
          if (cells.has(k)) {
            bad.push(`${name}: overlaps panel ${cells.get(k)} at ${k}`);
            y = Infinity;
            break;
          }
          cells.set(k, p.id);
        }
      }
    }
    if (p.type === 'row' || p.type === 'text') continue;
    if (p.datasource?.type !== 'prometheus' || p.datasource?.uid !== '${datasource}') {
      bad.push(`${name}: datasource ${JSON.stringify(p.datasource)}`);
    }
    const targets = p.targets ?? [];
    if (targets.length === 0) bad.push(`${name}: no targets`);
    const refs = new Set();
    for (const t of targets) {
      if (typeof t.refId !== 'string' || !t.refId || refs.has(t.refId)) {
        bad.push(`${name}: refId ${t.refId} missing or repeated`);
      }
      refs.add(t.refId);
      if (typeof t.expr !== 'string' || !t.expr.trim()) bad.push(`${name}/${t.refId}: no expr`);
      if (t.datasource && t.datasource.uid !== '${datasource}') {
        bad.push(`${name}/${t.refId}: datasource ${JSON.stringify(t.datasource)}`);
      }
    }
    const unit = p.fieldConfig?.defaults?.unit;
    if (unit !== undefined && typeof unit !== 'string') bad.push(`${name}: unit ${unit}`);
  }
  return bad;
}

describe('the Grafana dashboard and its provisioning', () => {
  const dashboard = JSON.parse(fs.readFileSync(DASHBOARD, 'utf8'));

  it('has the structure Grafana loads: grid, ids, refIds, data source variable', () => {
    assert.deepEqual(dashboardProblems(dashboard), []);
    // the panels the operations guide promises
    const titles = dashboard.panels.map((p) => p.title.toLowerCase());
    for (const want of ['connections per gateway', 'handshake latency', 'deliveries/s',
      'delivery latency', 'latency by stage', 'limit rejections', 'slow-consumer',
      'history appends', 'router lag', 'reconnects', 'memory per process']) {
      assert.ok(titles.some((t) => t.includes(want)), `no panel about ${want}`);
    }
  });

  it('the checker catches broken dashboards', () => {
    const broken = (mutate) => {
      const d = structuredClone(dashboard);
      mutate(d);
      return dashboardProblems(d);
    };
    assert.notDeepEqual(broken((d) => { d.panels[1].gridPos = { ...d.panels[0].gridPos }; }), []);
    assert.notDeepEqual(broken((d) => { d.panels[0].gridPos.w = 30; }), []);
    assert.notDeepEqual(broken((d) => { d.panels[1].targets[1].refId = 'A'; }), []);
    assert.notDeepEqual(broken((d) => { d.panels[0].datasource = { type: 'loki', uid: 'x' }; }), []);
    assert.notDeepEqual(broken((d) => { d.panels[2].id = d.panels[0].id; }), []);
    assert.notDeepEqual(broken((d) => { d.templating.list = []; }), []);
    assert.notDeepEqual(broken((d) => { delete d.uid; }), []);
  });

  it('compose provisions Prometheus as the source and this file as a dashboard', () => {
    const ds = yamlFile('deploy/grafana/provisioning/datasources/prometheus.yml');
    assert.equal(ds.apiVersion, 1);
    assert.equal(ds.datasources.length, 1);
    assert.equal(ds.datasources[0].type, 'prometheus');
    assert.equal(ds.datasources[0].url, 'http://prometheus:9090');
    const dash = yamlFile('deploy/grafana/provisioning/dashboards/wsgate.yml');
    assert.equal(dash.apiVersion, 1);
    const dir = dash.providers[0].options.path;
    // docker-compose.yml mounts the dashboard into that directory, and the provisioning tree
    // where Grafana reads it
    const compose = yamlFile('docker-compose.yml');
    const mounts = compose.services.grafana.volumes;
    assert.ok(mounts.includes(`./deploy/grafana/wsgate.json:${dir}/wsgate.json:ro`), JSON.stringify(mounts));
    assert.ok(mounts.includes('./deploy/grafana/provisioning:/etc/grafana/provisioning:ro'), JSON.stringify(mounts));
    assert.deepEqual(compose.services.grafana.profiles, ['monitoring']);
    assert.deepEqual(compose.services.prometheus.profiles, ['monitoring']);
    // the Prometheus it points at scrapes with the job names the dashboard selects on
    const prom = yamlFile('deploy/prometheus/prometheus.yml');
    const jobs = prom.scrape_configs.map((s) => s.job_name).sort();
    assert.deepEqual(jobs, ['wsgate-gateway', 'wsgate-router']);
    assert.deepEqual(prom.rule_files, ['/etc/prometheus/wsgate-alerts.yml']);
  });
});
