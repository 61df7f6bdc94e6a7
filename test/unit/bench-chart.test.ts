import assert from 'node:assert/strict'
import { chartSvg, niceTicks, place, type Panel } from '../../scripts/bench/chart'

/** Every element closed, in order: the picture is well-formed XML (no parser needed for this subset). */
function wellFormed(svg: string): void {
  const open: string[] = []
  for (const m of svg.matchAll(/<(\/?)([a-zA-Z]+)([^>]*?)(\/?)>/g)) {
    const [, close, name, , self] = m
    if (self) continue
    if (!close) open.push(name)
    else assert.equal(open.pop(), name, `</${name}> closes the element that is open`)
  }
  assert.deepEqual(open, [], 'every element is closed')
  // Text content holds no raw markup characters (escaped as entities).
  for (const m of svg.matchAll(/>([^<]*)</g)) assert.doesNotMatch(m[1], /[<>]|&(?!#\d+;)/, `escaped text: ${m[1]}`)
}

const axis = { min: 0.8, max: 1.05, ticks: niceTicks(0.8, 1.05, 0.05), unit: '' }
const panel: Panel = {
  title: 'Throughput <with> & without',
  axis,
  rows: [
    { label: 'ipv4, 1 session', dots: [{ value: 0.99, series: 'alternating' }], budget: 0.99, pass: true },
    { label: 'ipv6 <deferred>', dots: [{ value: 0.7, series: 'alternating' }, { value: 0.87, series: 'concurrent' }], budget: 0.95, pass: false },
    { label: 'no figure', dots: [{ value: NaN, series: 'alternating' }] },
  ],
}

describe('bench chart (SVG)', () => {
  it('places a value in proportion on the axis, and clamps one outside it to the edge', () => {
    const a = place(axis, 0.8)
    const b = place(axis, 1.05)
    const mid = place(axis, 0.925)
    assert.equal(a.clamped, false)
    assert.ok(Math.abs(mid.x - (a.x + b.x) / 2) < 1e-9, 'the middle value sits in the middle')
    assert.deepEqual(place(axis, 0.5), { x: a.x, clamped: true })
    assert.deepEqual(place(axis, 2), { x: b.x, clamped: true })
  })

  it('draws one dot per finite figure at its place, a budget mark per row that has one, PASS/FAIL on the label, escaped text', () => {
    const svg = chartSvg('bench & co', [panel])
    wellFormed(svg)
    assert.match(svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/)
    const dots = [...svg.matchAll(/<circle class="dot" data-series="([^"]*)" data-value="([^"]*)" cx="([\d.]+)"/g)]
    assert.deepEqual(
      dots.map((d) => [d[1], d[2]]),
      [
        ['alternating', '0.99'],
        ['alternating', '0.7'],
        ['concurrent', '0.87'],
      ],
      'the NaN figure draws no dot',
    )
    assert.equal(Number(dots[0][3]), Number(place(axis, 0.99).x.toFixed(1)))
    assert.equal(Number(dots[2][3]), Number(place(axis, 0.87).x.toFixed(1)))
    // 0.7 is below the axis: drawn at its left edge with its value written beside it.
    assert.equal(Number(dots[1][3]), Number(place(axis, 0.8).x.toFixed(1)))
    assert.match(svg, />0\.7<\/text>/)
    const budgets = [...svg.matchAll(/<line class="budget" x1="([\d.]+)"/g)].map((m) => Number(m[1]))
    assert.deepEqual(budgets, [Number(place(axis, 0.99).x.toFixed(1)), Number(place(axis, 0.95).x.toFixed(1))])
    assert.match(svg, /fill="#207020">ipv4, 1 session PASS</)
    assert.match(svg, /fill="#c02020">ipv6 &#60;deferred&#62; FAIL</)
    assert.match(svg, />Throughput &#60;with&#62; &#38; without</)
    assert.match(svg, />bench &#38; co</)
    // The legend names each series once, and the budget mark.
    for (const s of ['alternating', 'concurrent', 'budget']) assert.equal(svg.split(`>${s}</text>`).length - 1, 1, s)
  })

  it('stacks panels: the second starts below the first, and the picture is as high as its content', () => {
    const one = chartSvg('t', [panel])
    const two = chartSvg('t', [panel, { ...panel, title: 'second' }])
    const height = (svg: string) => Number(/height="(\d+)"/.exec(svg)![1])
    assert.ok(height(two) > height(one))
    const y = (svg: string, title: string) => Number(new RegExp(`y="(\\d+)" font-size="15" font-weight="bold">${title}<`).exec(svg)![1])
    assert.ok(y(two, 'second') > y(two, 'Throughput &#60;with&#62; &#38; without') + 3 * 22, 'below the first panel\'s rows')
    assert.ok(y(two, 'second') < height(two))
  })

  it('ticks: a given step without drift, or a 1-2-5 step with about five ticks', () => {
    assert.deepEqual(niceTicks(0.8, 1.05, 0.05), [0.8, 0.85, 0.9, 0.95, 1, 1.05])
    assert.deepEqual(niceTicks(0, 2.2), [0, 0.5, 1, 1.5, 2])
    assert.deepEqual(niceTicks(0, 190), [0, 50, 100, 150])
    assert.deepEqual(niceTicks(1, 1), [1], 'an empty range: one tick')
  })
})
