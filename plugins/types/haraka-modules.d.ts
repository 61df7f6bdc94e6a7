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
