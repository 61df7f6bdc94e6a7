// mx6-send settings: typed defaults, merged with config/mx6-send.ini.
import net from 'node:net'
import { readRedisSettings, type RedisSettings } from '../lib/redis'
import { checkReplyCode } from '../lib/reply'
import { SettingsReader, unknownKeys, type Section } from '../lib/settings'
import type { FallbackCodes } from './classify'
import type { PlanConfig } from './plan'

export const CONFIG_FILE = 'mx6-send.ini'
export const BOOLEANS = ['-main.allow_srv_port', '-main.ipv6_plain_mx', '+fallback.draft_456']

export interface SendConfig {
  plan: PlanConfig
  /** Source address for IPv6 connections (empty: the kernel chooses). */
  bindIpv6: string
  /** Source address for IPv4 connections (empty: the kernel chooses). */
  bindIpv4: string
  fallback: FallbackCodes & { logSize: number }
  dns: { servers: string[]; timeoutMs: number; negativeTtl: number; maxTtl: number }
  redis: RedisSettings
}

export type Ini = Record<string, Section>

export function readSendConfig(ini: Ini, redisFile = CONFIG_FILE): { config: SendConfig; errors: string[]; unknown: string[] } {
  const r = new SettingsReader(CONFIG_FILE)
  const main = ini.main
  const fb = ini.fallback
  const dns = ini.dns
  const ip = (family: 4 | 6) => (s: string) => (net.isIP(s) === family ? null : `expected an IPv${family} address`)
  let code = r.int(fb, 'fallback', 'code', 550, 400, 599)
  let status = r.str(fb, 'fallback', 'status', '5.5.7')
  const bad = checkReplyCode(code, status, Math.floor(code / 100) === 4 ? 4 : 5)
  if (bad) {
    r.errors.push(`${CONFIG_FILE} [fallback] code=${code} status=${status}: ${bad}; using 550 5.5.7`)
    code = 550
    status = '5.5.7'
  }
  const servers: string[] = []
  r.key('dns', 'servers')
  const rawServers = dns?.servers
  for (const s of typeof rawServers === 'string' ? rawServers.split(/[\s,]+/).filter(Boolean) : []) {
    if (net.isIP(s)) servers.push(s)
    else r.errors.push(`${CONFIG_FILE} [dns] servers: "${s}" is not an IP address; ignored`)
  }
  const config: SendConfig = {
    plan: {
      allowSrvPort: r.bool(main, 'main', 'allow_srv_port', false),
      ipv6PlainMx: r.bool(main, 'main', 'ipv6_plain_mx', false),
    },
    bindIpv6: r.str(main, 'main', 'bind_ipv6', '', ip(6)),
    bindIpv4: r.str(main, 'main', 'bind_ipv4', '', ip(4)),
    fallback: {
      code,
      status,
      draft456: r.bool(fb, 'fallback', 'draft_456', true),
      logSize: r.int(fb, 'fallback', 'log_size', 1000, 0, 1000000),
    },
    dns: {
      servers,
      timeoutMs: r.int(dns, 'dns', 'timeout', 5000, 100, 60000),
      negativeTtl: r.int(dns, 'dns', 'negative_ttl', 60, 0, 86400),
      maxTtl: r.int(dns, 'dns', 'max_ttl', 3600, 0, 604800),
    },
    redis: readRedisSettings(r.as(redisFile), ini.redis),
  }
  return { config, errors: r.errors, unknown: unknownKeys(ini, r) }
}
