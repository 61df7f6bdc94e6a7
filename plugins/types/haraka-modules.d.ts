// Type declarations for Haraka's own helper modules, which ship no types.
declare module 'haraka-constants' {
  const constants: {
    cont: number
    stop: number
    deny: number
    denysoft: number
    denydisconnect: number
    denysoftdisconnect: number
    ok: number
  }
  export default constants
}

declare module 'haraka-dsn' {
  class DSN {
    static create(code: number, msg: string | string[], subject?: number, detail?: number): DSN
    reply: string
    code: number
  }
  export default DSN
}

declare module 'haraka-plugin-spf/lib/spf' {
  export class SPF {
    helo: string
    dns_timeout_ms: number
    resolver: unknown
    check_host(ip: string, domain: string, mailFrom?: string): Promise<number>
    result(code: number): string
  }
}
