// The sending host's network namespace "<testbed>-snd", joined to the test bed by a veth pair.
//
// Why a second namespace: a sender in the receiver's namespace connects from loopback, which
// every policy plugin skips. Here the two namespaces are joined by a veth pair, and Haraka
// sees the sender as 2001:db8:9::2 / 203.0.113.2, reaching the MX addresses through the
// default routes. DNS: the test bed's dnsmasq (bind-dynamic) also listens on the test side of
// the veth, 2001:db8:9::1 / 203.0.113.1, and the sender's resolv.conf points there.
//
// Why nsenter: `ip netns add` run from inside the test bed (itself under `ip netns exec`, whose
// mounts do not propagate back) would create a namespace nobody outside can see or delete. It
// is therefore added and deleted in the mount namespace of scripts/testbed.sh (MX6_TESTBED_PID),
// whose EXIT trap then also removes it after a crash.
import fs from 'node:fs'
import { requireTestbed } from './net'
import { alive } from './postfix-instance'
import { poll, run, runOk } from './proc'

const VETH = 'mx6snd0' // test-namespace side; the sender side is "eth0" in its own namespace

export const SENDER = { v6: '2001:db8:9::2', v4: '203.0.113.2', hostname: 'sender.other.test' }
export const GATEWAY = { v6: '2001:db8:9::1', v4: '203.0.113.1' }

export class SenderNetns {
  private constructor(readonly ns: string) {}

  /** Creates the namespace, the veth pair, addresses, routes and resolv.conf. */
  static async create(): Promise<SenderNetns> {
    const ns = `${requireTestbed()}-snd`
    if (fs.existsSync(`/run/netns/${ns}`)) {
      throw new Error(`sender namespace ${ns} exists; only one sender at a time (stop() the previous one)`)
    }
    const sn = new SenderNetns(ns)
    try {
      await sn.network()
    } catch (err) {
      await sn.remove()
      throw err
    }
    return sn
  }

  private hostNetns(...args: string[]): Promise<string> {
    const pid = process.env.MX6_TESTBED_PID
    if (!pid) throw new Error('MX6_TESTBED_PID unset: run via scripts/testbed.sh')
    return runOk('nsenter', [`--mount=/proc/${pid}/ns/mnt`, '--', 'ip', 'netns', ...args])
  }

  /** Runs a command inside the namespace; resolves with its stdout. */
  exec(cmd: string, args: string[], opts: Parameters<typeof runOk>[2] = {}): Promise<string> {
    return runOk('ip', ['netns', 'exec', this.ns, cmd, ...args], opts)
  }

  /** The argv prefix that runs a command inside the namespace (for long-running children). */
  prefix(): string[] {
    return ['ip', 'netns', 'exec', this.ns]
  }

  private async network(): Promise<void> {
    await this.hostNetns('add', this.ns)
    fs.mkdirSync(`/etc/netns/${this.ns}`, { recursive: true })
    fs.writeFileSync(`/etc/netns/${this.ns}/resolv.conf`, `nameserver ${GATEWAY.v6}\nnameserver ${GATEWAY.v4}\n`)
    await runOk('ip', ['link', 'add', VETH, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', this.ns])
    await runOk('ip', ['-6', 'addr', 'add', `${GATEWAY.v6}/64`, 'dev', VETH, 'nodad'])
    await runOk('ip', ['addr', 'add', `${GATEWAY.v4}/24`, 'dev', VETH])
    await runOk('ip', ['link', 'set', VETH, 'up'])
    const snd = (...args: string[]): Promise<string> => this.exec('ip', args)
    await snd('link', 'set', 'lo', 'up')
    await snd('-6', 'addr', 'add', `${SENDER.v6}/64`, 'dev', 'eth0', 'nodad')
    await snd('addr', 'add', `${SENDER.v4}/24`, 'dev', 'eth0')
    await snd('link', 'set', 'eth0', 'up')
    await snd('-6', 'route', 'add', 'default', 'via', GATEWAY.v6)
    await snd('route', 'add', 'default', 'via', GATEWAY.v4)
    // dnsmasq binds the new veth address asynchronously (bind-dynamic): wait until it answers.
    await poll(async () => ((await run('ip', ['netns', 'exec', this.ns, 'getent', 'ahosts', 'v4mx.rcpt.test'])).code === 0 ? true : undefined), 5000, 'DNS from the sender namespace')
  }

  /** Kills what is left inside, removes the veth, the namespace and its /etc/netns entry. Safe to repeat. */
  async remove(): Promise<void> {
    // Anything still in the namespace was started by the sender that owns it.
    const pids = (await run('ip', ['netns', 'pids', this.ns])).stdout.split(/\s+/).filter(Boolean).map(Number)
    for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGKILL')
    await run('ip', ['link', 'del', VETH])
    if (process.env.MX6_TESTBED_PID) await this.hostNetns('del', this.ns).catch(() => undefined)
    fs.rmSync(`/etc/netns/${this.ns}`, { recursive: true, force: true })
  }
}
