// Haraka with two worker processes sharing one Redis (issue 8): the same decisions,
// whichever worker takes the connection, and one set of counters.
import assert from 'node:assert/strict'
import { run } from '../support/proc'
import { useReceiver, V4MX, V6MX } from '../support/receiver'
import { smtpSession } from '../support/smtp'

describe('e2e: Haraka with nodes=2 sharing one Redis', function () {
  this.timeout(90000)
  const rx = useReceiver({
    listen: [`[${V6MX}]:25`, `${V4MX}:25`],
    ini: '[main]\nundecided=defer\nlint_interval=0',
    config: { 'smtp.ini': `[main]\nlisten=[${V6MX}]:25,${V4MX}:25\nnodes=2\nforce_shutdown_timeout=3\n` },
  })

  it('runs two workers, and every connection gets the same decision for the same facts', async () => {
    await rx.redis.cli('HSET', 'mx6:ip:allow', '2001:db8:7::500/120', 'partner')
    const workers = (await run('pgrep', ['-P', String(rx.haraka.pid)])).stdout.trim().split('\n').filter(Boolean)
    assert.equal(workers.length, 2, `worker pids: ${workers.join(',')}`)
    const codes: string[] = []
    for (let i = 0; i < 16; i++) {
      const kind = i % 3
      const peer = kind === 0 ? '192.0.2.150' : kind === 1 ? '2001:db8:7::510' : '2001:db8:7::610'
      const r = await smtpSession({ host: kind === 0 ? V4MX : V6MX, port: 25, localAddress: peer, ehlo: 'x.test', mailFrom: 'a@neutral.test', rcptTo: ['bob@rcpt.test'], data: 'Subject: n\r\n\r\nx\r\n' })
      codes.push(`${kind}:${r.dataEnd?.code ?? r.rcpt[0].code}`)
    }
    assert.deepEqual([...new Set(codes)].sort(), ['0:250', '1:250', '2:451'])
    // Each worker has its own connection to the one Redis.
    assert.ok((rx.haraka.log().match(/\[mx6-receive\] using redis /g) ?? []).length >= 2, 'both workers connected')
    const clients = (await rx.redis.cli('CLIENT', 'LIST')).split('\n').filter((l) => !/cmd=client/.test(l))
    assert.ok(clients.length >= 2, clients.join('\n'))
    await new Promise((res) => setTimeout(res, 1500))
    const day = new Date().toISOString().slice(0, 10).replace(/-/g, '')
    const stats = await rx.redis.cli('HGETALL', `mx6:stats:${day}`)
    const count = (f: string) => Number(new RegExp(`^${f.replace(/[.:]/g, '\\$&')}\\n(\\d+)$`, 'm').exec(stats)?.[1] ?? 0)
    assert.equal(count('rcpt.trusted.ip:allow') + count('rcpt.defer.none'), codes.filter((c) => !c.startsWith('0:')).length)
  })
})
