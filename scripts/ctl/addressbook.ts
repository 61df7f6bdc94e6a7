// Address-book parsing for `mx6ctl book import` (members normalised by book-members.ts).
// Pure functions: text in, {addresses, skipped} out, so hostile files (binary junk,
// huge lines, unterminated quotes) are unit-tested.
import { MAX_INPUT, normaliseMember } from './book-members'

/** Refuse bigger files outright: a real address book is far smaller. */
export const MAX_FILE_BYTES = 50 * 1024 * 1024
/** Skipped lines kept with their line number; the rest are only counted per reason. */
export const MAX_SKIPPED_LISTED = 1000
/** Fields kept per CSV record; further fields are scanned but dropped. */
const MAX_FIELDS = 4096

export interface Skipped {
  /** 1-based physical line where the record (CSV row, vCard line or card) starts. */
  line: number
  reason: string
}

export interface ParseResult {
  format: 'csv' | 'vcard'
  /** Normalised members, each once, in the order first seen. */
  addresses: string[]
  /** Addresses seen again after their first occurrence (counted once). */
  duplicates: number
  /** The first MAX_SKIPPED_LISTED skipped records. */
  skipped: Skipped[]
  skippedTotal: number
  /** Skipped records per reason (all of them). */
  reasons: Record<string, number>
  /** Remarks about the file as a whole (e.g. an unterminated quote). */
  notes: string[]
}

class Collector {
  private readonly seen = new Set<string>()
  readonly result: ParseResult
  constructor(format: ParseResult['format']) {
    this.result = { format, addresses: [], duplicates: 0, skipped: [], skippedTotal: 0, reasons: {}, notes: [] }
  }
  add(value: string): void {
    if (this.seen.has(value)) {
      this.result.duplicates++
      return
    }
    this.seen.add(value)
    this.result.addresses.push(value)
  }
  skip(line: number, reason: string): void {
    const r = this.result
    r.skippedTotal++
    r.reasons[reason] = (r.reasons[reason] ?? 0) + 1
    if (r.skipped.length < MAX_SKIPPED_LISTED) r.skipped.push({ line, reason })
  }
  /** One cell that should hold one or more addresses ("a@x; b@y", Google's " ::: "). */
  cell(line: number, text: string): void {
    if (text.length > MAX_INPUT * 4) return this.skip(line, 'too long for an email address')
    const pieces = /[:;,]/.test(text) ? text.split(/:::|[;,]/).map((p) => p.trim()).filter((p) => p !== '') : [text.trim()].filter((p) => p !== '')
    const withAt = pieces.filter((p) => p.includes('@'))
    if (withAt.length === 0) return this.skip(line, pieces.length ? 'not an email address' : 'no email address')
    for (const p of withAt) {
      const n = normaliseMember(p)
      if ('error' in n) this.skip(line, n.error)
      else this.add(n.value)
    }
  }
}

/** Decodes a file by its byte-order mark (UTF-8, UTF-16LE/BE), UTF-8 otherwise. */
export function decodeText(buf: Buffer): string {
  let text: string
  if (buf.length >= 2 && buf[0] === 0xff && buf[1] === 0xfe) text = buf.subarray(2, buf.length - (buf.length % 2)).toString('utf16le')
  else if (buf.length >= 2 && buf[0] === 0xfe && buf[1] === 0xff) {
    const le = Buffer.from(buf.subarray(2, buf.length - (buf.length % 2)))
    text = le.swap16().toString('utf16le')
  } else text = buf.toString('utf8')
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text
}

/** vCard when a line starts with BEGIN:VCARD, whatever the file is called; CSV (or one address per line) otherwise. */
export function detectFormat(text: string): ParseResult['format'] {
  return /^[ \t]*BEGIN[ \t]*:[ \t]*VCARD[ \t]*$/im.test(text) ? 'vcard' : 'csv'
}

export function parseAddressBook(text: string): ParseResult {
  const t = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text
  return detectFormat(t) === 'vcard' ? parseVcard(t) : parseCsv(t)
}

// ---------------------------------------------------------------- CSV

const QUOTE = 0x22
const CR = 0x0d
const LF = 0x0a

/** Header names of e-mail columns: Email, E-mail Address, Primary Email, E-mail 2 Address, E-mail 1 - Value, ... */
export function isEmailHeader(name: string): boolean {
  const n = name.toLowerCase().replace(/[^a-z0-9]+/g, ' ').trim()
  return /^(?:(?:primary|secondary|other|home|work|business|personal|private|alternate|alt|additional)\s)?e\s?mail(?:\s?\d+)?(?:\s(?:address|addr|value))?(?:\s?\d+)?$/.test(n)
}

function detectDelimiter(text: string): string {
  let end = text.search(/[\r\n]/)
  if (end < 0 || end > 65536) end = Math.min(text.length, 65536)
  const first = text.slice(0, end)
  const count = (c: string): number => first.split(c).length - 1
  const candidates: Array<[string, number]> = [
    [',', count(',')],
    [';', count(';')],
    ['\t', count('\t')],
  ]
  candidates.sort((a, b) => b[1] - a[1])
  return candidates[0][1] > 0 ? candidates[0][0] : ','
}

/**
 * RFC 4180 records with the usual leniency: quotes only open a field at its
 * start, CRLF, LF or CR end a record, quoted fields may span lines. An
 * unterminated quote makes quotes literal from that record on (instead of
 * swallowing the rest of the file). Linear in the input.
 */
export function forEachCsvRecord(text: string, delimiter: string, onRecord: (fields: string[], line: number) => void, onNote: (note: string) => void = () => undefined): void {
  const n = text.length
  const delim = delimiter.charCodeAt(0)
  let quotes = true
  let i = 0
  let line = 1
  while (i < n) {
    const recordStart = i
    const recordLine = line
    const fields: string[] = []
    let restart = false
    for (;;) {
      // One field from i.
      let value = ''
      if (quotes && text.charCodeAt(i) === QUOTE) {
        const parts: string[] = []
        let j = i + 1
        let closed = false
        for (;;) {
          const q = text.indexOf('"', j)
          if (q < 0) break
          line += countBreaks(text, j, q)
          if (text.charCodeAt(q + 1) === QUOTE) {
            parts.push(text.slice(j, q + 1))
            j = q + 2
            continue
          }
          parts.push(text.slice(j, q))
          i = q + 1
          closed = true
          break
        }
        if (!closed) {
          onNote(`line ${recordLine}: unterminated quote; quotes are taken literally from there on`)
          quotes = false
          i = recordStart
          line = recordLine
          restart = true
          break
        }
        // Lenient: text after the closing quote belongs to the field.
        const start = i
        while (i < n) {
          const c = text.charCodeAt(i)
          if (c === delim || c === CR || c === LF) break
          i++
        }
        value = parts.join('') + text.slice(start, i)
      } else {
        const start = i
        while (i < n) {
          const c = text.charCodeAt(i)
          if (c === delim || c === CR || c === LF) break
          i++
        }
        value = text.slice(start, i)
      }
      if (fields.length < MAX_FIELDS) fields.push(value)
      if (i >= n) break
      const c = text.charCodeAt(i)
      if (c === delim) {
        i++
        if (i >= n) {
          if (fields.length < MAX_FIELDS) fields.push('')
          break
        }
        continue
      }
      // End of record.
      i += c === CR && text.charCodeAt(i + 1) === LF ? 2 : 1
      line++
      break
    }
    if (restart) continue
    onRecord(fields, recordLine)
  }
}

function countBreaks(text: string, from: number, to: number): number {
  let k = 0
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i)
    if (c === LF) k++
    else if (c === CR && text.charCodeAt(i + 1) !== LF) k++
  }
  return k
}

export function parseCsv(text: string): ParseResult {
  const out = new Collector('csv')
  const delimiter = detectDelimiter(text)
  let columns: number[] | null = null
  let first = true
  forEachCsvRecord(
    text,
    delimiter,
    (fields, line) => {
      if (fields.every((f) => f.trim() === '')) return
      if (first) {
        first = false
        const emailColumns = fields.map((f, i) => (isEmailHeader(f) ? i : -1)).filter((i) => i >= 0)
        if (emailColumns.length > 0) {
          columns = emailColumns
          return
        }
      }
      if (columns) {
        const cells = columns.map((c) => fields[c] ?? '').filter((c) => c.trim() !== '')
        if (cells.length === 0) return out.skip(line, 'no email address')
        for (const c of cells) out.cell(line, c)
        return
      }
      // Headerless: every field with an @ in it (one address per line is the usual case).
      const cells = fields.filter((f) => f.includes('@'))
      if (cells.length === 0) return out.skip(line, 'no email address')
      for (const c of cells) out.cell(line, c)
    },
    (note) => out.result.notes.push(note),
  )
  return out.result
}

// ---------------------------------------------------------------- vCard

interface Card {
  line: number
  emails: number
}

/**
 * vCard 2.1, 3.0 and 4.0: EMAIL properties (with a group prefix such as
 * `item1.`, any parameters), folded lines, several cards, quoted-printable
 * and base64 values (undecodable ones are skipped). Other properties are ignored.
 */
export function parseVcard(text: string): ParseResult {
  const out = new Collector('vcard')
  let card: Card | null = null
  const closeCard = (): void => {
    if (card && card.emails === 0) out.skip(card.line, 'card without email address')
    card = null
  }
  const onLine = (logical: string, line: number): void => {
    const colon = propertyColon(logical)
    if (colon < 0) return
    const params = splitOutsideQuotes(logical.slice(0, colon), ';')
    const name = (params.shift() ?? '').trim().replace(/^.*\./, '').toUpperCase()
    const value = logical.slice(colon + 1)
    if (name === 'BEGIN' && value.trim().toUpperCase() === 'VCARD') {
      closeCard()
      card = { line, emails: 0 }
    } else if (name === 'END' && value.trim().toUpperCase() === 'VCARD') {
      closeCard()
    } else if (name === 'EMAIL') {
      if (card) (card as Card).emails++
      const decoded = decodeValue(value, params)
      if ('error' in decoded) return out.skip(line, decoded.error)
      const n = normaliseMember(decoded.value)
      if ('error' in n) out.skip(line, n.error)
      else out.add(n.value)
    }
  }
  unfoldLines(text, onLine)
  closeCard()
  return out.result
}

/** Splits into physical lines (CRLF, LF or CR) and joins folded and quoted-printable soft-broken lines. */
function unfoldLines(text: string, onLine: (logical: string, line: number) => void): void {
  const n = text.length
  let i = 0
  let line = 0
  let pending: string[] | null = null
  let pendingLine = 0
  let pendingQp = false
  let pendingSoft = false
  const flush = (): void => {
    if (pending) onLine(pending.join(''), pendingLine)
    pending = null
  }
  while (i < n) {
    let j = i
    while (j < n) {
      const c = text.charCodeAt(j)
      if (c === CR || c === LF) break
      j++
    }
    const physical = text.slice(i, j)
    line++
    i = j < n && text.charCodeAt(j) === CR && text.charCodeAt(j + 1) === LF ? j + 2 : j + 1
    const first = physical.charCodeAt(0)
    if (pending && pendingSoft) {
      // A quoted-printable soft line break: the "=" is dropped, the next line joined as is.
      const p: string[] = pending
      p[p.length - 1] = p[p.length - 1].slice(0, -1)
      p.push(physical)
    } else if (pending && (first === 0x20 || first === 0x09)) {
      ;(pending as string[]).push(physical.slice(1))
    } else {
      flush()
      pending = [physical]
      pendingLine = line
      const head = physical.slice(0, Math.min(physical.length, 1000))
      pendingQp = /^[^:]*QUOTED-PRINTABLE/i.test(head)
    }
    pendingSoft = pendingQp && physical.endsWith('=') && physical.length < 100_000
  }
  flush()
}

/** Index of the colon that ends the property name and parameters (quoted parameter values may hold colons). */
function propertyColon(s: string): number {
  const limit = Math.min(s.length, 10_000)
  let quoted = false
  for (let i = 0; i < limit; i++) {
    const c = s.charCodeAt(i)
    if (c === QUOTE) quoted = !quoted
    else if (c === 0x3a && !quoted) return i
  }
  return -1
}

function splitOutsideQuotes(s: string, sep: string): string[] {
  const out: string[] = []
  let quoted = false
  let start = 0
  for (let i = 0; i < s.length; i++) {
    const c = s[i]
    if (c === '"') quoted = !quoted
    else if (c === sep && !quoted) {
      out.push(s.slice(start, i))
      start = i + 1
    }
  }
  out.push(s.slice(start))
  return out
}

function decodeValue(value: string, params: string[]): { value: string } | { error: string } {
  const p = params.map((x) => x.trim().toUpperCase())
  const encoding = p.find((x) => x.startsWith('ENCODING='))?.slice(9) ?? (p.includes('QUOTED-PRINTABLE') ? 'QUOTED-PRINTABLE' : p.includes('BASE64') ? 'BASE64' : '')
  const charset = (p.find((x) => x.startsWith('CHARSET='))?.slice(8) ?? 'UTF-8').replace(/"/g, '')
  if (value.length > MAX_INPUT * 4) return { error: 'too long for an email address' }
  let bytes: Buffer
  if (encoding === 'QUOTED-PRINTABLE') {
    if (/=(?![0-9A-Fa-f]{2})/.test(value)) return { error: 'undecodable quoted-printable value' }
    bytes = Buffer.from(value.replace(/=([0-9A-Fa-f]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16))), 'latin1')
  } else if (encoding === 'B' || encoding === 'BASE64') {
    if (!/^[A-Za-z0-9+/=\s]*$/.test(value)) return { error: 'undecodable base64 value' }
    bytes = Buffer.from(value, 'base64')
  } else if (encoding === '' || encoding === '8BIT' || encoding === '7BIT') {
    return { value: unescapeText(value) }
  } else return { error: `unknown encoding ${encoding}` }
  let decoded: string
  if (charset === 'UTF-8' || charset === 'US-ASCII' || charset === 'UTF8') decoded = bytes.toString('utf8')
  else if (charset === 'ISO-8859-1' || charset === 'LATIN1' || charset === 'WINDOWS-1252') decoded = bytes.toString('latin1')
  else return { error: `unsupported charset ${charset}` }
  if (decoded.includes('\ufffd')) return { error: 'undecodable characters' }
  return { value: decoded }
}

/** vCard 3.0/4.0 TEXT escapes. */
function unescapeText(v: string): string {
  return v.replace(/\\([\\,;nN])/g, (_m, c: string) => (c === 'n' || c === 'N' ? '\n' : c))
}
