// The benchmark's verdicts: which rows are compared, and PASS or FAIL against each budget.
import assert from 'node:assert/strict'
import { budgets, pairs, type Budget, type Row, type Scale } from '../../scripts/bench/budgets'
import type { Path } from '../../scripts/bench/load'

function row(config: Row['config'], path: Path, sessions: number, perSecond: number, more: Partial<Row> = {}): Row {
  return { config, path, sessions, load: { messages: 100, seconds: 100 / perSecond, perSecond, codes: { '250': 100 } }, cpu: { haraka: 1, redis: 0.1 }, busy: 0.5, ...more }
}

/** A path measured without and with the suite: msg/s of each. */
function both(path: Path, sessions: number, without: number, withSuite: number, more: Partial<Row> = {}): Row[] {
  return [row('haraka', path, sessions, without), row('haraka+mx6', path, sessions, withSuite, more)]
}

const RTT = { p50: 0.1, p99: 0.2 }
const MEMORY = { haraka: 80, 'haraka+mx6': 90 }

/** The one verdict whose name matches `re`. */
function verdict(list: Budget[], re: RegExp): Budget {
  const found = list.filter((b) => re.test(b.name))
  assert.equal(found.length, 1, `one budget matches ${re}: ${JSON.stringify(list.map((b) => b.name))}`)
  return found[0]
}

function size(entries: number, p50: number, rssMiB: number): Scale {
  return { entries, rcpt: { p50, p99: 2 * p50 }, redisMs: 0.05, redisUs: { evalsha: 30, hmget: 10 }, rssMiB }
}

describe('bench: pairs()', () => {
  it('pairs each path and session count measured with and without the suite, sessions in order of appearance, paths in PATHS order', () => {
    const rows = [
      row('haraka+mx6', 'ipv6-deferred', 1, 90),
      row('haraka', 'ipv6-deferred', 1, 100),
      row('haraka', 'ipv4', 1, 200),
      row('haraka+mx6', 'ipv4', 1, 199),
      row('haraka', 'ipv4', 50, 1000),
      row('haraka+mx6', 'ipv4', 50, 980),
    ]
    const got = pairs(rows)
    assert.deepEqual(
      got.map((p) => [p.path, p.sessions]),
      [
        ['ipv4', 1],
        ['ipv6-deferred', 1],
        ['ipv4', 50],
      ],
    )
    for (const p of got) {
      assert.equal(p.a.config, 'haraka')
      assert.equal(p.b.config, 'haraka+mx6')
      assert.equal(p.a.path, p.path)
      assert.equal(p.b.sessions, p.sessions)
    }
    // The ratio is msg/s with the suite over without; IPv4 (never filtered) has the tighter budget.
    assert.deepEqual(
      got.map((p) => [p.ratio, p.min]),
      [
        [199 / 200, 0.99],
        [0.9, 0.95],
        [0.98, 0.99],
      ],
    )
  })

  it('leaves out a path measured in one configuration only, or at another session count', () => {
    const rows = [row('haraka', 'ipv6-dkim', 1, 100), row('haraka+mx6', 'ipv6-dkim', 50, 100), row('haraka+mx6', 'ipv6-allowed', 1, 100)]
    assert.deepEqual(pairs(rows), [])
  })
})

describe('bench: budgets()', () => {
  it('throughput passes at the budget and fails below it', () => {
    const rows = [...both('ipv4', 1, 100, 99), ...both('ipv6-allowed', 1, 100, 94), ...both('ipv6-dkim', 1, 100, 96)]
    const v = budgets(rows, RTT, [], MEMORY, false)
    assert.equal(verdict(v, /^throughput ipv4, 1 session/).pass, true)
    assert.equal(verdict(v, /^throughput ipv6-allowed, 1 session/).pass, false)
    assert.equal(verdict(v, /^throughput ipv6-dkim, 1 session/).pass, true)
    assert.equal(verdict(v, /^throughput ipv4, 1 session/).measured, '0.990')
  })

  it('the concurrent rounds get a verdict of their own, on their ratio alone; the A/A control is only reported', () => {
    const concurrent = { ratio: 0.97, rounds: [0.96, 0.98], control: { ratio: 0.5, rounds: [0.5, 0.5] } }
    const rows = both('ipv6-deferred', 50, 100, 80, { concurrent })
    const v = budgets(rows, RTT, [], MEMORY, false)
    assert.equal(verdict(v, /^throughput ipv6-deferred, 50 session\(s\): with\/without/).pass, false)
    const c = verdict(v, /^throughput ipv6-deferred, 50 sessions, concurrent rounds/)
    assert.equal(c.pass, true)
    assert.match(c.measured, /^0\.970 \(rounds 0\.960-0\.980; A\/A control 0\.500\)$/)
    const below = budgets([rows[0], row('haraka+mx6', 'ipv6-deferred', 50, 100, { concurrent: { ...concurrent, ratio: 0.94, control: { ratio: 1, rounds: [1] } } })], RTT, [], MEMORY, false)
    assert.equal(verdict(below, /concurrent rounds/).pass, false)
  })

  it('decision reads: at most two per message (a little slack), counted with the suite, 1 session, IPv6 paths only', () => {
    const reads = (decisionReads: number) => ({ perMessage: { commands: 5, reads: 3, decisionReads } })
    const rows = [
      row('haraka+mx6', 'ipv6-allowed', 1, 100, reads(2.05)),
      row('haraka+mx6', 'ipv6-deferred', 1, 100, reads(2.1)),
      row('haraka+mx6', 'ipv6-dkim', 50, 100, reads(9)),
      row('haraka+mx6', 'ipv4', 1, 100, reads(9)),
    ]
    const v = budgets(rows, RTT, [], MEMORY, false)
    assert.equal(verdict(v, /decision reads per message on ipv6-allowed/).pass, true)
    assert.equal(verdict(v, /decision reads per message on ipv6-deferred/).pass, false)
    assert.equal(v.filter((b) => /decision reads/.test(b.name)).length, 2)
  })

  it('decision latency p99: at most 3 round trips measured inside the same Haraka; none measured is no pass', () => {
    const rows = [
      row('haraka+mx6', 'ipv6-allowed', 1, 100, { rcpt: { p50: 0.2, p99: 0.6 }, dataPost: { p50: 0.3, p99: 0.7 }, probeRtt: { p50: 0.1, p99: 0.2 } }),
      row('haraka+mx6', 'ipv6-dkim', 1, 100, { rcpt: { p50: 0.2, p99: 0.5 } }),
    ]
    const v = budgets(rows, { p50: 0.01, p99: 0.01 }, [], MEMORY, false)
    assert.equal(verdict(v, /latency p99, ipv6-allowed rcpt/).pass, true)
    assert.equal(verdict(v, /latency p99, ipv6-allowed data_post/).pass, false)
    assert.equal(verdict(v, /latency p99, ipv6-dkim rcpt/).pass, false)
    assert.equal(v.filter((b) => /latency p99, ipv6-dkim/.test(b.name)).length, 1)
  })

  it('scaling: the largest list against the smallest, latency within 1.2 x and RSS within 1.1 x', () => {
    const ok = budgets([], RTT, [size(10, 0.5, 100), size(10000, 0.55, 104), size(1000000, 0.6, 110)], MEMORY, false)
    assert.equal(verdict(ok, /^decision latency 1000000 vs 10 entries/).pass, true)
    assert.equal(verdict(ok, /^Haraka RSS 1000000 vs 10 entries/).pass, true)
    const bad = budgets([], RTT, [size(10, 0.5, 100), size(1000000, 0.61, 111)], MEMORY, false)
    assert.equal(verdict(bad, /^decision latency 1000000 vs 10 entries/).pass, false)
    assert.equal(verdict(bad, /^Haraka RSS 1000000 vs 10 entries/).pass, false)
    assert.equal(verdict(bad, /^Redis CPU per decision/).pass, true)
    assert.equal(budgets([], RTT, [size(10, 0.5, 100)], MEMORY, false).filter((b) => /entries/.test(b.name)).length, 0)
  })

  it('figures only reported always pass; --quick asserts nothing, every budget still listed', () => {
    const rows = both('ipv4', 1, 100, 50)
    const scaling = [size(10, 0.5, 100), size(1000, 5, 500)]
    const full = budgets(rows, RTT, scaling, MEMORY, false)
    assert.equal(verdict(full, /^Haraka RSS with\/without the suite/).pass, true)
    assert.deepEqual(
      full.map((b) => b.pass),
      [false, false, true, false, true],
    )
    const quick = budgets(rows, RTT, scaling, MEMORY, true)
    assert.deepEqual(
      quick.map((b) => b.name),
      full.map((b) => b.name),
    )
    assert.ok(quick.every((b) => b.pass))
  })
})
