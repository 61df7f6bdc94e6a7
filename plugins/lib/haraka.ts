// The parts of Haraka's plugin, connection and transaction objects the suite uses.
// Haraka is JavaScript; these types document what we rely on.

export type Next = (code?: number, msg?: unknown) => void

export interface ResultStore {
  add(plugin: unknown, obj: Record<string, unknown>): void
  get(name: string): Record<string, unknown> | undefined
}

export interface HarakaAddress {
  user: string
  host: string
  original?: string
}

export interface HarakaHeader {
  get_all(name: string): string[]
  get_decoded(name: string): string
}

export interface Transaction {
  uuid: string
  mail_from: HarakaAddress | null
  rcpt_to: HarakaAddress[]
  header: HarakaHeader
  notes: Record<string, unknown>
  results: ResultStore
}

export interface Connection {
  uuid: string
  remote: { ip: string; is_private?: boolean }
  local: { ip: string; port: number; host?: string }
  hello?: { host?: string; verb?: string }
  relaying: boolean
  notes: Record<string, unknown> & { auth_user?: string }
  results: ResultStore
  transaction: Transaction | null
  /** Haraka's logger appends a string as is and formats an object with util.inspect (only at a level it logs). */
  logdebug(plugin: unknown, msg: string | object): void
  loginfo(plugin: unknown, msg: string): void
  logwarn(plugin: unknown, msg: string): void
  logerror(plugin: unknown, msg: string): void
}

export interface ConfigApi {
  get(file: string, opts: unknown, cb?: () => void): unknown
}

export interface PluginBase {
  name: string
  config: ConfigApi
  register_hook(hook: string, method: string): void
  loginfo(msg: string): void
  logwarn(msg: string): void
  logerror(msg: string): void
  logdebug(msg: string): void
}
