// System users an unpacked MTA expects (Debian creates them in the package's postinst, which
// never runs here): the MTA is started in a private mount namespace where /etc/passwd and
// /etc/group are copies with those users added, so the machine's own files stay untouched.
import fs from 'node:fs'
import path from 'node:path'

export interface SystemUser {
  name: string
  uid: number
  home: string
}

/**
 * Writes passwd/group copies with `users` (one group of the same name and id each) into
 * `dir`; returns the argv prefix that runs a command with them bind-mounted (the command
 * keeps the prefix's PID: unshare and sh exec into it).
 */
export function privateUsers(dir: string, users: SystemUser[], mounts: Record<string, string> = {}): string[] {
  const passwd = fs.readFileSync('/etc/passwd', 'utf8').trimEnd()
  const group = fs.readFileSync('/etc/group', 'utf8').trimEnd()
  fs.writeFileSync(path.join(dir, 'passwd'), `${passwd}\n${users.map((u) => `${u.name}:x:${u.uid}:${u.uid}::${u.home}:/usr/sbin/nologin`).join('\n')}\n`)
  fs.writeFileSync(path.join(dir, 'group'), `${group}\n${users.map((u) => `${u.name}:x:${u.uid}:`).join('\n')}\n`)
  const binds = { [path.join(dir, 'passwd')]: '/etc/passwd', [path.join(dir, 'group')]: '/etc/group', ...mounts }
  const script = Object.entries(binds).map(([from, to]) => `mount --bind '${from}' '${to}'`).join(' && ')
  return ['unshare', '--mount', '--propagation', 'private', 'sh', '-c', `${script} && exec "$@"`, 'sh']
}
