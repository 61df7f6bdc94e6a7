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
