// Last-resort SPF with haraka-plugin-spf's engine.
import assert from 'node:assert/strict'
import { evaluateGuess } from '../../../plugins/mx6-receive/spf-guess'

const IP = '2001:db8:7::10'

describe('spf-guess: last-resort SPF (haraka-plugin-spf engine, no DNS needed for ip6:)', () => {
  it('passes for a peer the guessed record covers, fails otherwise', async () => {
    assert.equal(await evaluateGuess(IP, 'nospf.test', 'a@nospf.test', 'client.other.test', 'v=spf1 ip6:2001:db8:7::/64 -all', 1000), 'pass')
    assert.equal(await evaluateGuess('2001:db8:8::1', 'nospf.test', 'a@nospf.test', 'client.other.test', 'v=spf1 ip6:2001:db8:7::/64 -all', 1000), 'fail')
    assert.equal(await evaluateGuess(IP, 'nospf.test', 'a@nospf.test', 'h', 'v=spf1 ip6:2001:db8:7::/64 ?all', 1000), 'pass')
    assert.equal(await evaluateGuess(IP, 'nospf.test', 'a@nospf.test', 'h', 'v=spf1 ip6:bogus -all', 1000), 'permerror')
  })
})

describe('spf-guess: the resolver is injected', () => {
  it('an include: in the guessed record is looked up through the given resolver, a table here', async () => {
    const asked: string[] = []
    const table: Record<string, string[][]> = { '_spf.provider.test': [['v=spf1 ip6:2001:db8:7::/64 -all']] }
    const resolver = {
      resolveTxt: async (name: string) => {
        asked.push(name)
        if (table[name]) return table[name]
        throw Object.assign(new Error(`queryTxt ENOTFOUND ${name}`), { code: 'ENOTFOUND' })
      },
    } as never
    assert.equal(await evaluateGuess(IP, 'nospf.test', 'a@nospf.test', 'h', 'v=spf1 include:_spf.provider.test -all', 1000, resolver), 'pass')
    assert.equal(await evaluateGuess('2001:db8:8::1', 'nospf.test', 'a@nospf.test', 'h', 'v=spf1 include:_spf.provider.test -all', 1000, resolver), 'fail')
    assert.deepEqual(asked, ['_spf.provider.test', '_spf.provider.test'])
  })
})
