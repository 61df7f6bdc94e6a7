// A UDP DNS proxy in front of the test bed's dnsmasq that a test can switch to
// "drop" (no answer at all: the querier times out) and back to "forward".
import dgram from 'node:dgram'

const UPSTREAM = { host: '127.0.0.53', port: 53 }

export class DnsProxy {
  mode: 'forward' | 'drop' = 'forward'
  dropped = 0
  forwarded = 0
  private constructor(
    private readonly sock: dgram.Socket,
    readonly address: string,
  ) {}

  /** Listens on address:53 (a loopback address of the test namespace). */
  static start(address = '127.0.0.54'): Promise<DnsProxy> {
    return new Promise((resolve, reject) => {
      const sock = dgram.createSocket('udp4')
      const proxy = new DnsProxy(sock, address)
      sock.on('message', (msg, rinfo) => proxy.onQuery(msg, rinfo))
      sock.once('error', reject)
      sock.bind(53, address, () => resolve(proxy))
    })
  }

  private onQuery(msg: Buffer, client: dgram.RemoteInfo): void {
    if (this.mode === 'drop') {
      this.dropped++
      return
    }
    this.forwarded++
    const up = dgram.createSocket('udp4')
    const done = (): void => void up.close()
    const timer = setTimeout(done, 3000)
    up.on('message', (reply) => {
      clearTimeout(timer)
      this.sock.send(reply, client.port, client.address, done)
    })
    up.send(msg, UPSTREAM.port, UPSTREAM.host)
  }

  stop(): Promise<void> {
    return new Promise((resolve) => this.sock.close(() => resolve()))
  }
}
