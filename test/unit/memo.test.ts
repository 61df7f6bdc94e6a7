import assert from 'node:assert/strict'
import { memo, setBounded } from '../../plugins/lib/memo'

describe('bounded maps', () => {
  it('setBounded drops the oldest entry for a new key at the bound, and none for a key it already holds', () => {
    const m = new Map([['a', 1], ['b', 2]])
    setBounded(m, 'b', 20, 2)
    assert.deepEqual([...m], [['a', 1], ['b', 20]], 'a re-set key evicts nothing')
    setBounded(m, 'c', 3, 2)
    assert.deepEqual([...m], [['b', 20], ['c', 3]], 'a new key evicts the oldest')
  })

  it('memo makes each answer once while it is remembered, and again after it was dropped', () => {
    const made: string[] = []
    const f = memo(2, (k) => (made.push(k), k.toUpperCase()))
    assert.deepEqual([f('x'), f('x'), f('y'), f('z'), f('x')], ['X', 'X', 'Y', 'Z', 'X'])
    assert.deepEqual(made, ['x', 'y', 'z', 'x'])
  })
})
