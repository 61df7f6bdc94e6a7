// Network helpers for e2e tests. They run inside the test bed's network namespace
// (scripts/testbed.sh), where the MX listener addresses and the peer nets exist.
import net from 'node:net'
import { sleep } from './proc'

/** True when running inside `bash scripts/testbed.sh run -- ...`. */
export function insideTestbed(): boolean {
  return Boolean(process.env.MX6_TESTBED)
}

/** The test bed's namespace name; throws a clear error outside it. */
export function requireTestbed(): string {
  const ns = process.env.MX6_TESTBED
  if (!ns) {
    throw new Error(
      'e2e tests need the hermetic test bed (network namespace + test DNS): run them as root via ' +
        '`npm test`, or `npm run build && bash scripts/testbed.sh run -- npx mocha ...`',
    )
  }
  return ns
}

/** A TCP port that was free on `host` a moment ago. */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.once('error', reject)
    srv.listen(0, host, () => {
      const { port } = srv.address() as net.AddressInfo
      srv.close(() => resolve(port))
    })
  })
}

/** Splits "[2001:db8::1]:25" or "192.0.2.1:25" into host and port. */
export function parseHostPort(hp: string): { host: string; port: number } {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(hp) ?? /^([^:]+):(\d+)$/.exec(hp)
  if (!m) throw new Error(`not host:port: ${hp}`)
  return { host: m[1], port: Number(m[2]) }
}

function tryConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port })
    const done = (ok: boolean): void => {
      s.destroy()
      resolve(ok)
    }
    s.once('connect', () => done(true))
    s.once('error', () => done(false))
    s.setTimeout(1000, () => done(false))
  })
}

/** Waits until something accepts TCP connections on host:port. */
export async function waitForPort(host: string, port: number, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await tryConnect(host, port))) {
    if (Date.now() > deadline) throw new Error(`nothing listening on ${host}:${port} after ${timeoutMs} ms`)
    await sleep(25)
  }
}
