// The benchmark's figures as a picture: an SVG dot plot (no dependencies; any browser
// shows it). One panel per question: throughput with/without the suite against its
// budget, decision latency against list size, Haraka's memory.

export interface Dot {
  value: number
  /** Legend entry; dots of the same series share a look. */
  series: string
}

export interface DotRow {
  label: string
  dots: Dot[]
  /** A budget line on this row (e.g. the lowest ratio allowed). */
  budget?: number
  /** When the row has a budget: whether it was met (colours the row's label). */
  pass?: boolean
}

export interface Panel {
  title: string
  /** The axis: values outside [min, max] are drawn at its edge, with their value written. */
  axis: { min: number; max: number; ticks: number[]; unit: string }
  rows: DotRow[]
}

const WIDTH = 960
const LABEL = 330
const PLOT = WIDTH - LABEL - 60
const ROW = 22
const HEAD = 56
const GAP = 26
/** Looks by series, in legend order; series not listed here get the last one. */
const LOOKS = [
  { fill: '#1f77b4', stroke: '#1f77b4' },
  { fill: '#ffffff', stroke: '#1f77b4' },
  { fill: '#ff7f0e', stroke: '#ff7f0e' },
  { fill: '#ffffff', stroke: '#ff7f0e' },
  { fill: '#2ca02c', stroke: '#2ca02c' },
]

function esc(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
}

function num(n: number): string {
  return Number.isFinite(n) ? String(Math.round(n * 100) / 100) : 'n/a'
}

/** The x position of `value` on the panel's axis, and whether it had to be clamped. */
export function place(axis: Panel['axis'], value: number): { x: number; clamped: boolean } {
  const span = axis.max - axis.min
  const v = Math.min(axis.max, Math.max(axis.min, value))
  return { x: LABEL + ((v - axis.min) / span) * PLOT, clamped: v !== value }
}

function panelHeight(p: Panel): number {
  return HEAD + p.rows.length * ROW + GAP
}

function drawPanel(p: Panel, top: number, looks: Map<string, (typeof LOOKS)[number]>): string[] {
  const out: string[] = []
  const bottom = top + HEAD + p.rows.length * ROW - 8
  out.push(`<text x="10" y="${top + 18}" font-size="15" font-weight="bold">${esc(p.title)}</text>`)
  for (const t of p.axis.ticks) {
    const { x } = place(p.axis, t)
    out.push(`<line x1="${x.toFixed(1)}" y1="${top + 40}" x2="${x.toFixed(1)}" y2="${bottom}" stroke="#dddddd"/>`)
    out.push(`<text x="${x.toFixed(1)}" y="${top + 37}" font-size="11" text-anchor="middle" fill="#555555">${esc(`${num(t)}${p.axis.unit}`)}</text>`)
  }
  p.rows.forEach((r, i) => {
    const y = top + HEAD + i * ROW
    const colour = r.pass === undefined ? '#000000' : r.pass ? '#207020' : '#c02020'
    const verdict = r.pass === undefined ? '' : r.pass ? ' PASS' : ' FAIL'
    out.push(`<text x="${LABEL - 8}" y="${y + 4}" font-size="12" text-anchor="end" fill="${colour}">${esc(r.label + verdict)}</text>`)
    out.push(`<line x1="${LABEL}" y1="${y}" x2="${LABEL + PLOT}" y2="${y}" stroke="#f0f0f0"/>`)
    if (r.budget !== undefined) {
      const { x } = place(p.axis, r.budget)
      out.push(`<line class="budget" x1="${x.toFixed(1)}" y1="${y - 8}" x2="${x.toFixed(1)}" y2="${y + 8}" stroke="#c02020" stroke-width="2"/>`)
    }
    for (const d of r.dots) {
      if (!Number.isFinite(d.value)) continue
      const { x, clamped } = place(p.axis, d.value)
      const look = looks.get(d.series) ?? LOOKS[LOOKS.length - 1]
      out.push(`<circle class="dot" data-series="${esc(d.series)}" data-value="${num(d.value)}" cx="${x.toFixed(1)}" cy="${y}" r="5" fill="${look.fill}" stroke="${look.stroke}" stroke-width="2"/>`)
      // Off the axis: the dot sits at its edge and says what it is.
      if (clamped) out.push(`<text x="${(x + (d.value < p.axis.min ? 8 : -8)).toFixed(1)}" y="${y - 7}" font-size="10" text-anchor="${d.value < p.axis.min ? 'start' : 'end'}">${esc(num(d.value))}</text>`)
    }
  })
  return out
}

/** The whole picture: the panels one under the other, a legend of the series at the bottom. */
export function chartSvg(title: string, panels: Panel[]): string {
  const series = [...new Set(panels.flatMap((p) => p.rows.flatMap((r) => r.dots.map((d) => d.series))))]
  const looks = new Map(series.map((s, i) => [s, LOOKS[Math.min(i, LOOKS.length - 1)]]))
  const body: string[] = [`<text x="10" y="24" font-size="17" font-weight="bold">${esc(title)}</text>`]
  let top = 40
  for (const p of panels) {
    body.push(...drawPanel(p, top, looks))
    top += panelHeight(p)
  }
  // Legend: each series, and the budget mark, wrapped to the picture's width.
  let x = 10
  const fits = (text: string): void => {
    // About 7 px per character at this font size, plus the mark.
    const width = 30 + text.length * 7
    if (x > 10 && x + width > WIDTH) {
      x = 10
      top += 20
    }
  }
  for (const s of series) {
    const look = looks.get(s)!
    fits(s)
    body.push(`<circle cx="${x + 5}" cy="${top + 6}" r="5" fill="${look.fill}" stroke="${look.stroke}" stroke-width="2"/>`)
    body.push(`<text x="${x + 15}" y="${top + 10}" font-size="12">${esc(s)}</text>`)
    x += 30 + s.length * 7
  }
  fits('budget')
  body.push(`<line x1="${x + 5}" y1="${top - 2}" x2="${x + 5}" y2="${top + 14}" stroke="#c02020" stroke-width="2"/>`)
  body.push(`<text x="${x + 15}" y="${top + 10}" font-size="12">budget</text>`)
  const height = top + 30
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="sans-serif">`,
    `<rect width="${WIDTH}" height="${height}" fill="#ffffff"/>`,
    ...body,
    '</svg>',
    '',
  ].join('\n')
}

/** Round tick values from `min` to `max`: every `step`, or a 1-2-5 step giving about five ticks. */
export function niceTicks(min: number, max: number, step?: number): number[] {
  if (!(max > min)) return [min]
  let s = step
  if (!s) {
    const raw = (max - min) / 5
    const mag = 10 ** Math.floor(Math.log10(raw))
    s = [1, 2, 5, 10].map((m) => m * mag).find((c) => c >= raw) ?? 10 * mag
  }
  const out: number[] = []
  // Integer steps from a rounded start: no drift from adding fractions.
  for (let i = Math.ceil(min / s - 1e-9); i * s <= max + 1e-9; i++) out.push(Math.round(i * s * 1e6) / 1e6 || 0)
  return out
}
