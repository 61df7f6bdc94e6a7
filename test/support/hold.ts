// Builds the source of a test plugin that holds one hook while a flag file exists.
import fs from 'node:fs'
import path from 'node:path'

const TEMPLATE = path.resolve(__dirname, '..', '..', '..', 'test', 'fixtures', 'haraka', 'hold.js')

/** `when` is a JS expression over `target` (the connection or the outbound hmail). */
export function holdPlugin(hook: string, flag: string, when = 'true'): string {
  return fs.readFileSync(TEMPLATE, 'utf8').replace(/__HOOK__/g, hook).replace(/__FLAG__/g, flag).replace(/__WHEN__/g, when)
}
