// The benchmark's configurations and how each Haraka is started: alone, with the suite, with
// the contract's floor in the suite's place (the path's fixture plugin that does only what the
// contract asks of its decision), and the same policy built with rspamd (haraka-plugin-rspamd
// in front of a private rspamd, no spf, dkim or suite plugin); and the concurrent rounds that
// load them all at once on the same CPU.
import path from 'node:path'
import { HarakaServer } from '../../test/support/haraka'
import { cpuMs } from '../../test/support/proc'
import { RedisServer } from '../../test/support/redis'
import { RspamdServer, rspamdIni } from '../../test/support/rspamd'
import type { Concurrent, PerMessage, Ratio } from './budgets'
import { rspamdLists, seed } from './lists'
import { fixturePlugin, freshRound, suiteIni, V4, V6, type Path, type Running } from './load'

export type Config = 'haraka' | 'haraka+mx6' | 'haraka+mx6 uncached' | 'haraka (control)' | 'haraka+floor' | 'haraka+rspamd'

/** The floor plugin (scripts/bench/fixtures/) of each path that has one. */
export const FLOORS: Partial<Record<Path, 'floor-defer' | 'floor-allow-uncached'>> = { 'ipv6-deferred': 'floor-defer', 'ipv6-allowed-uncached': 'floor-allow-uncached' }

/** The compiled suite the floor plugins require (this file runs from dist/scripts/bench/). */
const DIST = path.resolve(__dirname, '..', '..')

export interface StartOptions {
  port: number
  /** The Redis bench-eld's probe PINGs (the run's shared one, never a configuration's own). */
  probePort: number
  /** The Redis the suite or the floor uses. @default probePort */
  listPort?: number
  path?: Path
  /** More [main] lines of mx6-receive.ini. */
  extraIni?: string
  prefix?: string
}

/** One Haraka of a configuration. haraka+rspamd starts its rspamd too (use startConfig). */
export function startHaraka(config: Exclude<Config, 'haraka+rspamd'>, o: StartOptions, rspamd?: RspamdServer): Promise<HarakaServer> {
  const floor = config === 'haraka+floor' ? FLOORS[o.path ?? 'ipv4'] : undefined
  if (config === 'haraka+floor' && !floor) throw new Error(`no floor plugin for path ${o.path ?? '(none)'}`)
  const policy = rspamd ? ['rspamd'] : config === 'haraka' || config === 'haraka (control)' ? ['spf', 'dkim'] : ['spf', 'dkim', floor ?? 'mx6-receive']
  const uncached = config === 'haraka+mx6 uncached' || o.path === 'ipv6-allowed-uncached'
  return HarakaServer.start({
    listen: [`[${V6}]:${o.port}`, `${V4}:${o.port}`],
    // rspamd checks SPF and DKIM itself: haraka-plugin-rspamd takes the place of spf, dkim and the suite.
    plugins: ['bench-eld', ...policy, 'rcpt_to.in_host_list', 'bench-queue'],
    // bench-eld: the event-loop and Redis round-trip probe, in every configuration (see its file).
    pluginFiles: { 'bench-queue': fixturePlugin('bench-queue'), 'bench-eld': fixturePlugin('bench-eld'), ...(floor ? { [floor]: fixturePlugin(floor) } : {}) },
    config: {
      'mx6-receive.ini': suiteIni(o.listPort ?? o.probePort, { main: o.extraIni, prefix: o.prefix, uncached }),
      'bench-eld.ini': `[main]\nredis_port=${o.probePort}\n`,
      ...(floor ? { 'bench-floor.ini': `[main]\ndist=${DIST}\n` } : {}),
      // The benchmark's peers are addresses of this host (as skip_private=false for the suite):
      // rspamd is asked about every one of them.
      ...(rspamd ? { 'rspamd.ini': rspamdIni(rspamd, { check: { private_ip: true, local_ip: true } }) } : {}),
    },
  })
}

/**
 * A configuration's Haraka, after `ready` (e.g. pinning it); haraka+rspamd with a fresh
 * rspamd of its own (the lists of lists.ts in its maps), whose CPU counts for it, and whose
 * scans are counted into `scans` when it stops. `helperPid`: a Redis only this one uses.
 */
export async function startConfig(config: Config, o: StartOptions, ready: (h: HarakaServer) => Promise<void>, more: { helperPid?: number; scans?: number[] } = {}): Promise<Running> {
  if (config !== 'haraka+rspamd') {
    const h = await startHaraka(config, o)
    await ready(h)
    const helper = more.helperPid
    return helper ? { pid: h.pid, stop: () => h.stop(), helperCpuMs: () => cpuMs(helper) } : h
  }
  const rs = await RspamdServer.start(rspamdLists())
  try {
    const h = await startHaraka('haraka', o, rs)
    await ready(h)
    return {
      pid: h.pid,
      helperCpuMs: () => rs.cpuMs(),
      stop: async () => {
        more.scans?.push(rs.scanCount())
        await h.stop()
        await rs.stop()
      },
    }
  } catch (err) {
    await rs.stop()
    throw err
  }
}

/** The reply each configuration must give on a path: the policy defers unknown IPv6 peers, Haraka alone accepts everything. */
export function expectedCode(config: Config, p: Path): string {
  return p === 'ipv6-deferred' && (config === 'haraka+mx6' || config === 'haraka+floor' || config === 'haraka+rspamd') ? '451' : '250'
}

/**
 * Several sessions keep Haraka's CPU busy, so throughput follows its CPU time per message.
 * Here every configuration takes the same load at the same time, on the same CPU: whatever
 * the machine's speed does, it does to all at the same moments (alternating rounds see it
 * drift between them). Returns Haraka alone's CPU per message over each one's: the suite's,
 * the A/A control's (a second Haraka alone, loaded alike), the floor's (on FLOORS' paths) and
 * the rspamd setup's, and every process's CPU per message (Haraka, the suite's and the floor's
 * own Redis, rspamd).
 *
 * Each round has processes of its own, started for it and warmed with as many messages as
 * it measures: two processes of the same code have landed up to a few per cent apart,
 * and fresh ones each round let that average out over the rounds instead of tilting all
 * of them the same way; nor does any of them carry more history than another. The suite and
 * the floor each have a Redis of their own (same lists), so its CPU is theirs alone. Any
 * reply other than the path's (expectedCode), or an rspamd that did not scan every message,
 * fails the run: the comparison would not be of the same policy.
 */
export async function concurrentRounds(p: Path, suite: Config, o: { port: number; probePort: number; sessions: number; messages: number; rounds: number; signed: Buffer }, ready: (h: HarakaServer) => Promise<void>): Promise<Concurrent> {
  // Haraka alone first: each ratio is its CPU over another's.
  const loaded: Config[] = ['haraka', suite, 'haraka (control)', ...(FLOORS[p] ? ['haraka+floor' as const] : []), 'haraka+rspamd']
  const ports = loaded.map((_, i) => o.port + i)
  const own = new Map<Config, RedisServer>()
  try {
    for (const c of [suite, 'haraka+floor'] as const) {
      if (!loaded.includes(c)) continue
      const r = await RedisServer.start()
      own.set(c, r)
      await seed(r.port)
    }
    const cpu = loaded.map(() => 0)
    const helper = loaded.map(() => 0)
    const rounds = loaded.map(() => [] as number[])
    for (let round = 0; round < o.rounds; round++) {
      const scans: number[] = []
      const starts = loaded.map((c) => (port: number) => startConfig(c, { port, probePort: o.probePort, listPort: own.get(c)?.port, path: p }, ready, { helperPid: own.get(c)?.pid, scans }))
      const r = await freshRound(starts, ports, p, o.sessions, o.messages, o.signed)
      for (const [i, c] of loaded.entries()) {
        const want = expectedCode(c, p)
        if (r.loads[i].codes[want] !== o.messages) throw new Error(`${p}, ${c}: replies ${JSON.stringify(r.loads[i].codes)}, want ${o.messages} x ${want}`)
      }
      // Warm-up and measured load: every message scanned (not skipped as a local peer).
      if (!(scans[0] >= 2 * o.messages)) throw new Error(`${p}, haraka+rspamd: rspamd scanned ${scans[0]} of ${2 * o.messages} messages`)
      r.cpuMs.forEach((u, i) => {
        cpu[i] += u
        helper[i] += r.helperMs[i]
        rounds[i].push(r.cpuMs[0] / u)
      })
    }
    const n = o.messages * o.rounds
    const ratio = (c: Config): Ratio | undefined => {
      const i = loaded.indexOf(c)
      return i < 0 ? undefined : { ratio: cpu[0] / cpu[i], rounds: rounds[i] }
    }
    const perMessage = (c: Config): PerMessage | undefined => {
      const i = loaded.indexOf(c)
      if (i < 0) return undefined
      return { haraka: cpu[i] / n, redis: own.has(c) ? helper[i] / n : 0, rspamd: c === 'haraka+rspamd' ? helper[i] / n : 0 }
    }
    const s = ratio(suite)!
    return { ratio: s.ratio, rounds: s.rounds, control: ratio('haraka (control)')!, floor: ratio('haraka+floor'), rspamd: ratio('haraka+rspamd'), cpu: { alone: perMessage('haraka')!, suite: perMessage(suite)!, floor: perMessage('haraka+floor'), rspamd: perMessage('haraka+rspamd') } }
  } finally {
    for (const r of own.values()) await r.stop()
  }
}
