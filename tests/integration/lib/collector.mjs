// collector: an ordered inbox for things that arrive asynchronously (WebSocket frames, NATS
// messages). Tests take items out with next(predicate, timeoutMs), which consumes the first
// matching item (waiting for it if needed), and assert silence with expectNone(). Every wait is
// bounded; a timeout fails with a description of what did arrive.

export class Collector {
  constructor(name) {
    this.name = name;
    this.items = [];   // not yet consumed, in arrival order
    this.waiters = []; // { predicate, resolve }
    this.ended = null; // set once nothing more can arrive (reason text)
  }

  push(item) {
    const i = this.waiters.findIndex((w) => w.predicate(item));
    if (i >= 0) {
      const [w] = this.waiters.splice(i, 1);
      w.resolve(item);
      return;
    }
    this.items.push(item);
  }

  end(reason) {
    this.ended = reason;
    for (const w of this.waiters.splice(0)) w.reject(new Error(`${this.name}: ${reason}`));
  }

  next(predicate = () => true, timeoutMs = 5000, what = 'matching item') {
    const i = this.items.findIndex(predicate);
    if (i >= 0) return Promise.resolve(this.items.splice(i, 1)[0]);
    if (this.ended) return Promise.reject(new Error(`${this.name}: waiting for ${what}: ${this.ended}`));
    return new Promise((resolve, reject) => {
      const waiter = {
        predicate,
        resolve: (item) => { clearTimeout(timer); resolve(item); },
        reject: (err) => { clearTimeout(timer); reject(err); },
      };
      const timer = setTimeout(() => {
        const k = this.waiters.indexOf(waiter);
        if (k >= 0) this.waiters.splice(k, 1);
        reject(new Error(`${this.name}: no ${what} within ${timeoutMs} ms; unconsumed: ` +
          this.describe()));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  // Waits ms, then fails if any unconsumed item (already queued or newly arrived) matches.
  async expectNone(predicate = () => true, ms = 500, what = 'item') {
    await new Promise((r) => setTimeout(r, ms));
    const hit = this.items.find(predicate);
    if (hit !== undefined) {
      throw new Error(`${this.name}: unexpected ${what}: ${this.show(hit)}`);
    }
  }

  // Drops every unconsumed item.
  clear() { this.items.length = 0; }

  show(item) {
    if (item && typeof item.describe === 'function') return item.describe();
    try { return JSON.stringify(item, (k, v) => (typeof v === 'bigint' ? v.toString() : v)); } catch { return String(item); }
  }

  describe() {
    if (this.items.length === 0) return '(none)';
    return this.items.slice(-10).map((x) => this.show(x)).join(' | ');
  }
}
