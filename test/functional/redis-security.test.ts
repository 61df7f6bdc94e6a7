// Redis with a password, an ACL user, and TLS (Debian's redis-server, private per test);
// credentials never appear in errors, logs or mx6ctl output.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { Keys } from '../../plugins/lib/keys'
import { candidatePrefixes } from '../../plugins/lib/ip'
import { createRedis, describeRedis, REDIS_DEFAULTS, type RedisSettings } from '../../plugins/lib/redis'
import { RedisListStore, StoreUnavailableError } from '../../plugins/lib/store'
import { ctl } from '../support/ctl'
import { freePort } from '../support/net'
import { poll, runOk, tempDir } from '../support/proc'
import { RedisServer } from '../support/redis'

const PASS = 'default-S3cret-pass'
const USER_PASS = 'acl-user-S3cret'

async function storeFor(s: RedisSettings, errors: string[]): Promise<{ store: RedisListStore; close: () => void }> {
  const client = createRedis(s)
  client.on('error', (e: Error) => errors.push(e.message))
  // The peer list cache opens a second connection with the same credentials and TLS settings.
  const store = new RedisListStore(client, new Keys('mx6:'), { timeoutMs: 2000, statsDays: 1, peerCache: { entries: 10, maxAgeMs: 60000 } })
  return { store, close: () => void store.close() }
}

const ready = (s: RedisListStore) => poll(async () => (await s.lookup({ domainCandidates: ['x.test'] }).catch(() => undefined)) ?? undefined, 5000, 'store ready')

describe('functional: Redis authentication and TLS', function () {
  this.timeout(30000)
  let server: RedisServer
  let tlsPort: number
  let ca: string

  before(async () => {
    // A private CA and a server certificate for 127.0.0.1, made for this run.
    const dir = tempDir('redis-tls')
    ca = path.join(dir, 'ca.crt')
    const o = (...a: string[]) => runOk('openssl', a, { cwd: dir })
    await o('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=mx6 test CA')
    await o('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1')
    fs.writeFileSync(path.join(dir, 'ext'), 'subjectAltName=IP:127.0.0.1\n')
    await o('x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '2', '-extfile', 'ext')
    tlsPort = await freePort()
    server = await RedisServer.start({
      args: ['--tls-port', String(tlsPort), '--tls-cert-file', path.join(dir, 'server.crt'), '--tls-key-file', path.join(dir, 'server.key'), '--tls-ca-cert-file', ca, '--tls-auth-clients', 'no'],
    })
    await server.cli('HSET', 'mx6:ip:allow', '2001:db8:7::/64', 'partner')
    // The permissions README.md and config/mx6-receive.ini document, nothing more.
    await server.cli('ACL', 'SETUSER', 'mx6', 'on', `>${USER_PASS}`, '~mx6:*', '&__redis__:invalidate', '+@read', '+@write', '+@scripting', '+client|id', '+client|tracking', '+subscribe')
    await server.cli('CONFIG', 'SET', 'requirepass', PASS)
  })
  after(async () => {
    await runOk('redis-cli', ['-p', String(server.port), '-a', PASS, '--no-auth-warning', 'CONFIG', 'SET', 'requirepass', '']).catch(() => '')
    await server?.stop()
  })

  const lookupHits = async (s: RedisListStore) => (await s.lookup({ ipCandidates: candidatePrefixes('2001:db8:7::10') })).ipAllow?.entry

  it('a password (default user) works', async () => {
    const errors: string[] = []
    const { store, close } = await storeFor({ ...REDIS_DEFAULTS, port: server.port, password: PASS }, errors)
    await ready(store)
    assert.equal(await lookupHits(store), '2001:db8:7::/64')
    close()
  })

  it('an ACL user with its password works', async () => {
    const errors: string[] = []
    const { store, close } = await storeFor({ ...REDIS_DEFAULTS, port: server.port, username: 'mx6', password: USER_PASS }, errors)
    await ready(store)
    assert.equal(await lookupHits(store), '2001:db8:7::/64')
    await poll(() => (store.peerCacheOn ? true : undefined), 5000, 'the peer list cache on with the documented permissions')
    close()
  })

  it('a wrong password fails cleanly (4xx for the plugin) and no error, description or mx6ctl line shows a password', async () => {
    const errors: string[] = []
    const settings = { ...REDIS_DEFAULTS, port: server.port, password: 'wrong-S3cret' }
    const { store, close } = await storeFor(settings, errors)
    await poll(() => (errors.length ? true : undefined), 5000, 'auth error')
    await assert.rejects(store.lookup({ domainCandidates: ['x.test'] }), StoreUnavailableError)
    close()
    const saved = process.env.MX6_REDIS_URL
    process.env.MX6_REDIS_URL = `redis://mx6:wrong-S3cret@127.0.0.1:${server.port}/0`
    const r = await ctl('stats')
    if (saved === undefined) delete process.env.MX6_REDIS_URL
    else process.env.MX6_REDIS_URL = saved
    assert.equal(r.code, 1)
    const everything = [...errors, describeRedis(settings), describeRedis({ ...REDIS_DEFAULTS, url: `redis://mx6:${USER_PASS}@127.0.0.1:1/0` }), r.out, r.err].join('\n')
    assert.match(r.err, /cannot connect to redis|WRONGPASS|NOAUTH|redis/i)
    assert.ok(!everything.includes('S3cret'), everything)
  })

  it('TLS with the private CA works, and without the CA the certificate is refused', async () => {
    const errors: string[] = []
    const ok = await storeFor({ ...REDIS_DEFAULTS, url: `rediss://127.0.0.1:${tlsPort}`, password: PASS, tlsCa: ca }, errors)
    await ready(ok.store)
    assert.equal(await lookupHits(ok.store), '2001:db8:7::/64')
    await poll(() => (ok.store.peerCacheOn ? true : undefined), 5000, 'the peer list cache on over TLS')
    ok.close()
    const refused: string[] = []
    const bad = await storeFor({ ...REDIS_DEFAULTS, port: tlsPort, tls: true, password: PASS }, refused)
    await poll(() => (refused.length ? true : undefined), 5000, 'TLS error')
    assert.match(refused[0], /self.signed|certificate/i)
    await assert.rejects(bad.store.lookup({ domainCandidates: ['x.test'] }), StoreUnavailableError)
    bad.close()
  })
})
