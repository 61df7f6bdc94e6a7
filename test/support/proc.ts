// Process plumbing shared by the e2e helpers: run a command, stop a child for sure, and a
// last-resort kill list so a crashed or aborted test run leaves no daemons behind.
import { spawn, ChildProcess, SpawnOptions } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

export interface RunResult {
  code: number
  stdout: string
  stderr: string
}

/** PIDs the helpers started and have not stopped yet; SIGKILLed when this process exits. */
const owned = new Set<number>()
/** Temp dirs made outside the test bed (inside it, testbed.sh removes its whole dir). */
const tempDirs: string[] = []
process.on('exit', () => {
  for (const pid of owned) {
    try {
      process.kill(pid, 'SIGKILL')
    } catch {
      // already gone
    }
  }
  for (const dir of tempDirs) fs.rmSync(dir, { recursive: true, force: true })
})

export function own(pid: number): void {
  owned.add(pid)
}

export function disown(pid: number): void {
  owned.delete(pid)
}

/** Runs a command to completion (killed after timeoutMs) and collects its output. */
export function run(
  cmd: string,
  args: string[],
  opts: { input?: string | Buffer; timeoutMs?: number; env?: NodeJS.ProcessEnv; cwd?: string } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: opts.env ?? process.env, cwd: opts.cwd, stdio: 'pipe' })
    const out: Buffer[] = []
    const err: Buffer[] = []
    child.stdout.on('data', (d: Buffer) => out.push(d))
    child.stderr.on('data', (d: Buffer) => err.push(d))
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 30000)
    child.on('error', (e) => {
      clearTimeout(timer)
      reject(new Error(`${cmd}: ${e.message}`))
    })
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      resolve({
        code: code ?? 128 + (signal ? os.constants.signals[signal] : 0),
        stdout: Buffer.concat(out).toString(),
        stderr: Buffer.concat(err).toString(),
      })
    })
    child.stdin.on('error', () => undefined) // the command may exit without reading its input
    child.stdin.end(opts.input ?? '')
  })
}

/** Like run(), but throws (with the output) unless the command exits 0. */
export async function runOk(cmd: string, args: string[], opts: Parameters<typeof run>[2] = {}): Promise<string> {
  const r = await run(cmd, args, opts)
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}\n${r.stderr}${r.stdout}`)
  return r.stdout
}

/** Spawns a long-running child that is killed if the test process exits first. */
export function spawnOwned(cmd: string, args: string[], opts: SpawnOptions): ChildProcess {
  const child = spawn(cmd, args, opts)
  if (child.pid !== undefined) {
    const pid = child.pid
    own(pid)
    child.once('exit', () => disown(pid))
  }
  return child
}

/** Resolves when the child has exited (at once if it already has). */
export function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => child.once('exit', () => resolve()))
}

/** Sends `signal`, then SIGKILL if the child is still there after graceMs. */
export async function stopChild(child: ChildProcess, signal: NodeJS.Signals, graceMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  child.kill(signal)
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs)
  await exited(child)
  clearTimeout(timer)
}

/** A fresh temp dir, inside the test bed's dir when there is one (removed with the test bed). */
export function tempDir(prefix: string): string {
  const inside = process.env.MX6_TESTBED_DIR
  const dir = fs.mkdtempSync(path.join(inside ?? os.tmpdir(), `${prefix}-`))
  if (!inside) tempDirs.push(dir)
  return dir
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/** Polls `check` until it returns a value other than undefined, or throws after timeoutMs. */
export async function poll<T>(check: () => T | undefined | Promise<T | undefined>, timeoutMs: number, what: string, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await check()
    if (v !== undefined) return v
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(everyMs)
  }
}

/**
 * The fields of /proc/<pid>/stat after the command name: [0] is the state (field 3 in
 * proc(5)), [11]/[12] utime/stime, [19] the start time. undefined once the process is gone.
 */
export function procStat(pid: number): string[] | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
    // "pid (comm) state ppid ...": comm may contain spaces and parentheses; split after the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  } catch {
    return undefined
  }
}

/** A process's children, from /proc (empty once it is gone). */
export function childPids(pid: number): number[] {
  try {
    return fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number)
  } catch {
    return []
  }
}

/** User + system CPU time of a process so far, in milliseconds (/proc counts clock ticks, 100 per second on Linux). */
export function cpuMs(pid: number): number {
  const f = procStat(pid)
  return f ? ((Number(f[11]) + Number(f[12])) * 1000) / 100 : NaN
}

/** Resident set size of a process in MiB (NaN once it is gone). */
export function rssMiB(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m ? Number(m[1]) / 1024 : NaN
  } catch {
    return NaN
  }
}

/** Open file descriptors of a process (0 once it is gone). */
export function fdCount(pid: number): number {
  try {
    return fs.readdirSync(`/proc/${pid}/fd`).length
  } catch {
    return 0
  }
}
