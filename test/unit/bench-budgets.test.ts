// The benchmark's verdicts: which rows are compared, and PASS or FAIL against each budget.
import assert from 'node:assert/strict'
import { budgets, judge, overFloor, pairs, spreadOf, totalCpu, type Budget, type Concurrent, type Row, type Scale } from '../../scripts/bench/budgets'
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
    assert.equal(verdict(v, /^throughput ipv4, 1 session/).measured, '0.990 (no A/A spread measured)')
  })

  it('the concurrent rounds get a verdict of their own, on their ratio, judged against the A/A spread of their control rounds', () => {
    const concurrent = { ratio: 0.97, rounds: [0.96, 0.98], control: { ratio: 0.5, rounds: [0.5, 0.5] } }
    const rows = both('ipv6-dkim', 50, 100, 80, { concurrent })
    const v = budgets(rows, RTT, [], MEMORY, false)
    // 0.80 against 0.95, 50 % spread: short of the budget by less than the spread.
    assert.equal(verdict(v, /^throughput ipv6-dkim, 50 session\(s\): with\/without/).verdict, 'within the spread')
    const c = verdict(v, /^throughput ipv6-dkim, 50 sessions, concurrent rounds/)
    assert.equal(c.verdict, 'PASS')
    assert.match(c.measured, /^0\.970 \(rounds 0\.960-0\.980; A\/A control 0\.500, spread 0\.500\)$/)
    const below = budgets([rows[0], row('haraka+mx6', 'ipv6-dkim', 50, 100, { concurrent: { ...concurrent, ratio: 0.94, control: { ratio: 1, rounds: [1.005, 0.995] } } })], RTT, [], MEMORY, false)
    const b = verdict(below, /concurrent rounds/)
    assert.equal(b.verdict, 'FAIL')
    assert.equal(b.pass, false)
    const near = budgets([rows[0], row('haraka+mx6', 'ipv6-dkim', 50, 100, { concurrent: { ...concurrent, ratio: 0.94, control: { ratio: 1, rounds: [1.02, 0.99] } } })], RTT, [], MEMORY, false)
    assert.equal(verdict(near, /concurrent rounds/).verdict, 'within the spread')
    assert.equal(verdict(near, /concurrent rounds/).pass, true)
  })

  it('the floor\'s paths: absolute budgets only reported; suite / floor >= 0.97, judged against the spread', () => {
    const judged = (suite: number, floor: number, control: number[]) => {
      const c: Concurrent = { ratio: suite, rounds: [suite, suite], control: { ratio: 1, rounds: control }, floor: { ratio: floor, rounds: [floor, floor] } }
      return budgets(both('ipv6-deferred', 50, 100, 50, { concurrent: c }), RTT, [], MEMORY, false)
    }
    const v = judged(0.9, 0.92, [1, 1])
    assert.equal(verdict(v, /^throughput ipv6-deferred, 50 session\(s\): with\/without/).verdict, 'reported')
    assert.equal(verdict(v, /^throughput ipv6-deferred, 50 sessions, concurrent rounds \(Haraka/).verdict, 'reported')
    const f = verdict(v, /suite \/ floor >= 0\.97/)
    assert.equal(f.verdict, 'PASS')
    assert.match(f.measured, /^0\.978 /)
    assert.equal(verdict(judged(0.88, 0.92, [1, 1]), /suite \/ floor/).verdict, 'FAIL')
    // 0.957 is 1.4 % under 0.97: within a 2 % spread, beyond a 1 % one.
    assert.equal(verdict(judged(0.88, 0.92, [1.02, 0.99]), /suite \/ floor/).verdict, 'within the spread')
    assert.equal(verdict(judged(0.88, 0.92, [1.01, 0.99]), /suite \/ floor/).verdict, 'FAIL')
    // Without a floor measured there is no floor budget, and the retired one judges nothing.
    const none = budgets(both('ipv6-allowed-uncached', 1, 100, 10), RTT, [], MEMORY, false)
    assert.ok(none.every((b) => b.pass))
    assert.equal(none.filter((b) => /floor >=/.test(b.name)).length, 0)
  })

  it('rspamd: the suite\'s total CPU per message at most half the rspamd setup\'s on IPv6 paths, IPv4 only reported', () => {
    const c = (suite: number, rspamd: number, control = [1, 1]): Partial<Row> => ({
      concurrent: { ratio: 0.95, rounds: [0.95], control: { ratio: 1, rounds: control }, rspamd: { ratio: 1, rounds: [1] }, cpu: { alone: { haraka: 1, redis: 0, rspamd: 0 }, suite: { haraka: suite, redis: 0.25, rspamd: 0 }, rspamd: { haraka: 1.25, redis: 0, rspamd: rspamd } } },
    })
    const pass = budgets([...both('ipv6-allowed', 50, 100, 100, c(1, 1.25)), ...both('ipv4', 50, 100, 100, c(5, 0.1))], RTT, [], MEMORY, false)
    const r = verdict(pass, /total CPU per message, ipv6-allowed/)
    assert.equal(r.verdict, 'PASS')
    assert.match(r.measured, /^0\.500 \(1\.000 \+ 0\.250 ms vs 1\.250 \+ 1\.250 ms; Haraka alone 0\.400;/)
    // Where Haraka alone's own total is over half the rspamd setup's, no suite can pass: said so.
    const far = verdict(budgets(both('ipv6-deferred', 50, 100, 100, c(1.1, 0.5)), RTT, [], MEMORY, false), /total CPU/)
    assert.equal(far.verdict, 'FAIL')
    assert.match(far.measured, /out of reach: Haraka alone is 0\.571 of it/)
    assert.equal(verdict(pass, /total CPU per message, ipv4/).verdict, 'reported')
    assert.equal(verdict(budgets(both('ipv6-dkim', 50, 100, 100, c(1.5, 1.25, [1.1, 1])), RTT, [], MEMORY, false), /total CPU/).verdict, 'FAIL')
    assert.equal(verdict(budgets(both('ipv6-dkim', 50, 100, 100, c(1.2, 1.25, [1.2, 1])), RTT, [], MEMORY, false), /total CPU/).verdict, 'within the spread')
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
    assert.deepEqual(
      full.map((b) => b.verdict),
      ['FAIL', 'FAIL', 'reported', 'FAIL', 'reported'],
    )
    const quick = budgets(rows, RTT, scaling, MEMORY, true)
    assert.deepEqual(
      quick.map((b) => b.name),
      full.map((b) => b.name),
    )
    assert.ok(quick.every((b) => b.pass && b.verdict === 'not judged'))
  })
})

describe('bench: the A/A spread and its verdicts', () => {
  it('spreadOf: the control rounds\' largest deviation from 1, either way; 0 without rounds', () => {
    assert.equal(spreadOf([1.01, 0.97, 1.02]).toFixed(3), '0.030')
    assert.equal(spreadOf([1.04]).toFixed(3), '0.040')
    assert.equal(spreadOf([]), 0)
    assert.equal(spreadOf([NaN, 1.01]).toFixed(3), '0.010')
  })

  it('judge: at the budget PASS, short by up to budget x spread within the spread, beyond FAIL; both directions', () => {
    const table: Array<[number, number, number, boolean, string]> = [
      [0.97, 0.97, 0, false, 'PASS'],
      [0.99, 0.97, 0.02, false, 'PASS'],
      [0.9604, 0.97, 0.01, false, 'within the spread'],
      [0.9602, 0.97, 0.01, false, 'FAIL'],
      [0.969, 0.97, 0, false, 'FAIL'],
      [0.5, 0.5, 0, true, 'PASS'],
      [0.509, 0.5, 0.02, true, 'within the spread'],
      [0.511, 0.5, 0.02, true, 'FAIL'],
      [0.3, 0.5, 0.02, true, 'PASS'],
      [NaN, 0.5, 1, true, 'FAIL'],
      [NaN, 0.97, 1, false, 'FAIL'],
    ]
    for (const [value, budget, spread, atMost, want] of table) assert.equal(judge(value, budget, spread, atMost), want, `${value} vs ${budget} (spread ${spread}, ${atMost ? 'at most' : 'at least'})`)
  })

  it('overFloor: the suite\'s ratio over the floor\'s, overall and round by round; none without a floor', () => {
    const c: Concurrent = { ratio: 0.9, rounds: [0.88, 0.92], control: { ratio: 1, rounds: [1, 1] }, floor: { ratio: 0.95, rounds: [0.9, 0.95] } }
    const f = overFloor(c)!
    assert.equal(f.ratio.toFixed(4), (0.9 / 0.95).toFixed(4))
    assert.deepEqual(f.rounds.map((r) => r.toFixed(4)), [(0.88 / 0.9).toFixed(4), (0.92 / 0.95).toFixed(4)])
    assert.equal(overFloor({ ...c, floor: undefined }), undefined)
    assert.equal(totalCpu({ haraka: 1, redis: 0.25, rspamd: 0.5 }), 1.75)
  })
})
