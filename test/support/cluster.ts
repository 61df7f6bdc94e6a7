// A private Redis Cluster (three masters, no replicas) on loopback ports, per test file.
import { ChildProcess } from 'node:child_process'
import path from 'node:path'
import { freePort } from './net'
import { poll, run, runOk, spawnOwned, stopChild, tempDir } from './proc'

const HOST = '127.0.0.1'

export class RedisCluster {
  private constructor(
    readonly ports: number[],
    private readonly children: ChildProcess[],
  ) {}

  /** host:port seed list, as [redis] cluster= takes it. */
  get seeds(): string[] {
    return this.ports.map((p) => `${HOST}:${p}`)
  }

  static async start(masters = 3): Promise<RedisCluster> {
    const ports: number[] = []
    // The cluster bus listens on port + 10000: keep both below 65536 and distinct.
    while (ports.length < masters) {
      const p = await freePort(HOST)
      if (p < 55000 && !ports.includes(p)) ports.push(p)
    }
    const children = ports.map((port) => {
      const dir = tempDir(`cluster-${port}`)
      return spawnOwned('redis-server', ['--port', String(port), '--bind', HOST, '--cluster-enabled', 'yes', '--cluster-config-file', path.join(dir, 'nodes.conf'), '--cluster-node-timeout', '2000', '--save', '', '--appendonly', 'no', '--dir', dir, '--logfile', path.join(dir, 'redis.log')], { stdio: 'ignore' })
    })
    const cluster = new RedisCluster(ports, children)
    try {
      for (const p of ports) await poll(async () => ((await run('redis-cli', ['-p', String(p), 'PING'])).stdout.trim() === 'PONG' ? true : undefined), 5000, `cluster node ${p}`)
      await runOk('redis-cli', ['--cluster', 'create', ...cluster.seeds, '--cluster-replicas', '0', '--cluster-yes'], { timeoutMs: 20000 })
      for (const p of ports) await poll(async () => (/cluster_state:ok/.test((await run('redis-cli', ['-p', String(p), 'CLUSTER', 'INFO'])).stdout) ? true : undefined), 10000, `cluster state ok on ${p}`)
    } catch (err) {
      await cluster.stop()
      throw err
    }
    return cluster
  }

  /** redis-cli in cluster mode (-c follows MOVED redirections). */
  async cli(...args: string[]): Promise<string> {
    return (await runOk('redis-cli', ['-c', '-p', String(this.ports[0]), ...args])).replace(/\n$/, '')
  }

  /** The node a key lives on. */
  async keySlot(key: string): Promise<number> {
    return Number(await this.cli('CLUSTER', 'KEYSLOT', key))
  }

  async stop(): Promise<void> {
    await Promise.all(this.children.map((c) => stopChild(c, 'SIGTERM')))
  }
}
