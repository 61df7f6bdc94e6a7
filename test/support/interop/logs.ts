// Each sender's own account of one message, read from its log: how often it went back to the
// queue, and whether the sender gave up (bounced). Pure functions, unit-tested on real lines.
import type { SenderView } from './types'

const NONE: SenderView = { deferrals: 0, bounced: false }

/** Postfix: "<qid>: message-id=<…>" ties the queue ID (short or long form) to the message; one status= line per try. */
export function postfixView(log: string, messageId: string): SenderView {
  const lines = log.split('\n')
  const id = lines.map((l) => / ([0-9A-Za-z]+): message-id=(\S+)/.exec(l)).find((x) => x && x[2] === messageId)?.[1]
  if (!id) return NONE
  const mine = lines.filter((l) => l.includes(` ${id}: `))
  return { deferrals: mine.filter((l) => /status=deferred/.test(l)).length, bounced: mine.some((l) => /status=bounced/.test(l)) }
}

/** Exim: "<id> <= <sender>" on arrival; "==" when an attempt ended deferred, "**" when it failed. */
export function eximView(log: string, from: string): SenderView {
  const lines = log.split('\n')
  const id = lines.map((l) => /(\S+) <= (\S+) /.exec(l)).find((x) => x && x[2] === from)?.[1]
  if (!id) return NONE
  const mine = lines.filter((l) => l.includes(` ${id} `))
  return { deferrals: mine.filter((l) => / == /.test(l)).length, bounced: mine.some((l) => / \*\* /.test(l)) }
}

/** OpenSMTPD: "smtp envelope evpid=… from=<…>", then one "mta delivery evpid=… result=…" per try. */
export function opensmtpdView(log: string, from: string): SenderView {
  const lines = log.split('\n')
  const evpid = lines.map((l) => /smtp envelope evpid=([0-9a-f]+) from=<([^>]*)>/.exec(l)).find((x) => x && x[2] === from)?.[1]
  if (!evpid) return NONE
  const mine = lines.filter((l) => l.includes(`evpid=${evpid} `))
  return { deferrals: mine.filter((l) => /result="?TempFail/.test(l)).length, bounced: mine.some((l) => /result="?PermFail/.test(l)) }
}

/** Haraka outbound: its lines carry the submission's transaction uuid; "Temp failing" per deferral. */
export function harakaView(log: string, from: string): SenderView {
  const lines = log.split('\n')
  const uuid = lines.map((l) => /\[([0-9A-F-]{36})(?:\.\d+)*\] \[core\] sender <([^>]*)>/.exec(l)).find((x) => x && x[2] === from)?.[1]
  if (!uuid) return NONE
  const mine = lines.filter((l) => l.includes(`[${uuid}.`) && l.includes('[outbound]'))
  return { deferrals: mine.filter((l) => /\] Temp failing /.test(l)).length, bounced: mine.some((l) => /bouncing mail/.test(l)) }
}
