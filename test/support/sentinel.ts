// A private Redis master, one replica and one Sentinel (quorum 1) on loopback ports.
import { ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { freePort } from './net'
import { poll, run, spawnOwned, stopChild, tempDir } from './proc'
import { RedisServer } from './redis'

const HOST = '127.0.0.1'

export class RedisSentinelSet {
  private constructor(
    readonly master: RedisServer,
    readonly replica: RedisServer,
    readonly sentinelPort: number,
    private readonly sentinel: ChildProcess,
  ) {}

  /** host:port of the sentinel, as [redis] sentinels= takes it. */
  get sentinels(): string[] {
    return [`${HOST}:${this.sentinelPort}`]
  }

  static async start(name = 'mymaster'): Promise<RedisSentinelSet> {
    const master = await RedisServer.start()
    const replica = await RedisServer.start({ args: ['--replicaof', HOST, String(master.port)] })
    await poll(async () => (/master_link_status:up/.test(await replica.cli('INFO', 'replication')) ? true : undefined), 10000, 'replica in sync')
    const port = await freePort(HOST)
    const dir = tempDir('sentinel')
    const conf = path.join(dir, 'sentinel.conf')
    // Sentinel rewrites its own config file: it must be writable.
    fs.writeFileSync(conf, [`port ${port}`, `bind ${HOST}`, `dir ${dir}`, `sentinel monitor ${name} ${HOST} ${master.port} 1`, `sentinel down-after-milliseconds ${name} 1000`, `sentinel failover-timeout ${name} 5000`, ''].join('\n'))
    const child = spawnOwned('redis-server', [conf, '--sentinel', '--logfile', path.join(dir, 'sentinel.log')], { stdio: 'ignore' })
    const set = new RedisSentinelSet(master, replica, port, child)
    await poll(async () => ((await run('redis-cli', ['-p', String(port), 'SENTINEL', 'replicas', name])).stdout.includes(String(replica.port)) ? true : undefined), 15000, 'sentinel sees the replica')
    return set
  }

  /** The port of whatever the sentinel currently calls the master. */
  async masterPort(name = 'mymaster'): Promise<number> {
    const out = (await run('redis-cli', ['-p', String(this.sentinelPort), 'SENTINEL', 'get-master-addr-by-name', name])).stdout.trim().split('\n')
    return Number(out[1])
  }

  async stop(): Promise<void> {
    await stopChild(this.sentinel, 'SIGTERM')
    await this.replica.stop()
    await this.master.stop()
  }
}
