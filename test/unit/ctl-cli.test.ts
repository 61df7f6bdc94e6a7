// mx6ctl's conventions, without Redis: invalid input is exit 2 with one line pointing at
// the help, --version, --json and the exit status in every reporting command's help,
// --force for entries wider than a /16, and which entries skip_private makes inert.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { main } from '../../scripts/mx6ctl'
import { needsForce, privateOnly } from '../../scripts/ctl/lists'
import { COMMANDS } from '../../scripts/ctl/registry'

function capture() {
  const out: string[] = []
  const err: string[] = []
  return { out, err, io: { out: (t: string) => void out.push(t), err: (t: string) => void err.push(t) } }
}

async function ctl(...argv: string[]) {
  const c = capture()
  const code = await main(argv, c.io)
  return { code, out: c.out, err: c.err }
}

describe('mx6ctl: usage and invalid input', () => {
  // Whatever reaches Redis fails with exit 1 here (nothing listens on port 1): each refusal must come first.
  const saved = { url: process.env.MX6_REDIS_URL, config: process.env.MX6_CONFIG }
  let dir = ''
  before(() => {
    process.env.MX6_REDIS_URL = 'redis://127.0.0.1:1'
    delete process.env.MX6_CONFIG
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mx6-ctl-cli-'))
  })
  after(() => {
    if (saved.url === undefined) delete process.env.MX6_REDIS_URL
    else process.env.MX6_REDIS_URL = saved.url
    if (saved.config !== undefined) process.env.MX6_CONFIG = saved.config
    fs.rmSync(dir, { recursive: true, force: true })
  })

  const bad: Array<[string, string[]]> = [
    ['allow', ['allow', 'ip', 'add', 'garbage!']],
    ['allow', ['allow', 'ip', 'add', '2001:db8::1/48']],
    ['allow', ['allow', 'ip', 'add', '::/0']],
    ['allow', ['allow', 'ip', 'frob']],
    ['allow', ['allow', 'ip', 'ls', '--frob']],
    ['allow', ['allow', 'domain', 'add', 'example.org', 'bad\nnote']],
    ['green', ['green', 'asn', 'add', '0']],
    ['green', ['green', 'ip', 'add', '2000::/3']],
    ['book', ['book', 'add', 'not-a-mailbox', 'a@example.org']],
    ['book', ['book', 'add', 'bob@example.com', 'nope']],
    ['book', ['book', 'ls', '@example.com']],
    ['book', ['book', 'import', 'bob@example.com', 'missing.csv']],
    ['sync', ['sync', 'allow', 'ip', 'Bad', 'list.txt']],
    ['sync', ['sync', 'arc', 'domain', 'dwl', 'list.txt']],
    ['sync', ['sync', 'allow', 'ip', 'dwl', 'list.txt', '--max-rejected', 'many']],
    ['sync', ['sync', 'green', 'domain', 'dwl']],
    ['sync', ['sync', 'ls', 'extra']],
    ['sync', ['sync', 'rm', 'allow', 'ip']],
    ['lint', ['lint', 'extra']],
    ['lint', ['lint', '--frob']],
    ['stats', ['stats', '--days', 'x']],
    ['fallbacks', ['fallbacks', '--limit', '0']],
    ['followup', ['followup', '--suggest', '--window', 'soon']],
    ['explain', ['explain']],
    ['explain', ['explain', '--ip', '2001:db8::1', '--rcpt', 'no-at']],
    ['dns', ['dns', 'check']],
    ['dns', ['dns', 'records', '--domain', 'x.test']],
    ['version', ['version', 'extra']],
    ['install', ['install']],
  ]
  for (const [cmd, argv] of bad) {
    it(`exit 2, one line, "see \`mx6ctl ${cmd} --help\`": ${JSON.stringify(argv.slice(1))}`, async () => {
      const r = await ctl(...argv)
      assert.equal(r.code, 2, r.err.join('\n'))
      assert.deepEqual(r.out, [])
      assert.equal(r.err.length, 1, r.err.join('\n'))
      assert.doesNotMatch(r.err[0], /\n/)
      assert.ok(r.err[0].startsWith(`mx6ctl ${cmd}: `), r.err[0])
      assert.ok(r.err[0].endsWith(`; see \`mx6ctl ${cmd} --help\``), r.err[0])
    })
  }

  it('a file that cannot be read names the file and the reason', async () => {
    const r = await ctl('book', 'import', 'bob@example.com', path.join(dir, 'contacts.csv'))
    assert.equal(r.code, 2)
    assert.deepEqual(r.err, [`mx6ctl book: cannot read ${path.join(dir, 'contacts.csv')}: no such file or directory; see \`mx6ctl book --help\``])
  })

  it('a broad entry without --force says why', async () => {
    assert.deepEqual((await ctl('allow', 'ip', 'add', '::/0')).err, ['mx6ctl allow: ::/0 would allow-list every IPv6 peer; add --force if you mean it; see `mx6ctl allow --help`'])
  })

  it('--config that is not a Haraka instance points at mx6ctl --help', async () => {
    const r = await ctl('--config', path.join(dir, 'nope'), 'stats')
    assert.equal(r.code, 2)
    assert.deepEqual(r.err, [`mx6ctl stats: --config ${path.join(dir, 'nope')}: no such directory; see \`mx6ctl --help\``])
  })

  const global: Array<[string, string[], RegExp]> = [
    ['no command', [], /^mx6ctl: missing command; see `mx6ctl --help`$/],
    ['unknown command', ['frob'], /^mx6ctl: unknown command "frob"; see `mx6ctl --help`$/],
    ['unknown option', ['--frob'], /^mx6ctl: unknown option "--frob"; see `mx6ctl --help`$/],
    ['help for an unknown command', ['help', 'frob'], /^mx6ctl: unknown command "frob"; see `mx6ctl --help`$/],
    ['--config without a directory', ['--config'], /^mx6ctl: --config needs a directory; see `mx6ctl --help`$/],
    ['control characters in a command name', ['a\u001b[2Jb'], /^mx6ctl: unknown command "a\\u001b\[2Jb"; see `mx6ctl --help`$/],
  ]
  for (const [what, argv, want] of global) {
    it(`${what}: exit 2 and one line`, async () => {
      const r = await ctl(...argv)
      assert.equal(r.code, 2)
      assert.deepEqual(r.out, [])
      assert.equal(r.err.length, 1, r.err.join('\n'))
      assert.match(r.err[0], want)
    })
  }

  it('--help and help <command> still print the help, exit 0', async () => {
    const all = await ctl('--help')
    assert.equal(all.code, 0)
    assert.match(all.out.join(''), /^Usage: mx6ctl /)
    const one = await ctl('help', 'lint')
    assert.equal(one.code, 0)
    assert.equal(one.out.join(''), COMMANDS.lint.help)
  })
})

describe('mx6ctl --version', () => {
  const pkg = JSON.parse(fs.readFileSync(path.resolve(__dirname, '..', '..', '..', 'package.json'), 'utf8')) as { name: string; version: string }

  it('prints the package version, as --version and as the version command', async () => {
    for (const argv of [['--version'], ['version'], ['--config', 'ignored', '--version']]) {
      const r = await ctl(...argv)
      assert.equal(r.code, 0, argv.join(' '))
      assert.deepEqual(r.out, [`mx6ctl ${pkg.version}`])
      assert.deepEqual(r.err, [])
    }
    assert.deepEqual(JSON.parse((await ctl('version', '--json')).out.join('')), { name: pkg.name, version: pkg.version })
  })
})

describe('mx6ctl help texts', () => {
  const reporting = ['allow', 'green', 'book', 'lint', 'stats', 'fallbacks', 'followup', 'explain', 'dns', 'version']
  for (const name of reporting) {
    it(`${name}: --json with its shape, and the exit status`, () => {
      const help = COMMANDS[name].help
      assert.match(help, /--json/)
      // The shape: at least one JSON key spelt out.
      assert.match(help, /\{"\w+"/)
      assert.match(help, /Exit status/)
    })
  }
})

describe('mx6ctl allow/green ip: broad and inert entries', () => {
  it('needs --force below a /16; ::/0 is every IPv6 peer', () => {
    assert.equal(needsForce('allow', '::/0'), '::/0 would allow-list every IPv6 peer; add --force if you mean it')
    assert.equal(needsForce('green', '::/0'), '::/0 would greenlist every IPv6 peer; add --force if you mean it')
    assert.equal(needsForce('allow', '2000::/3'), '2000::/3 would allow-list more than a /16 (8192 /16 networks); add --force if you mean it')
    assert.match(needsForce('green', '2000::/15') ?? '', /^2000::\/15 would greenlist more than a \/16 \(2 \/16 networks\)/)
    for (const ok of ['2001::/16', '2001:db8::/32', '2001:db8::1']) assert.equal(needsForce('allow', ok), null, ok)
  })

  it('knows which entries cover only peers Haraka calls private', () => {
    const cases: Array<[string, string | null]> = [
      ['::1', 'the loopback address'],
      ['::', 'the unspecified address'],
      ['fd00::/8', 'unique local (fc00::/7)'],
      ['fc00::/7', 'unique local (fc00::/7)'],
      ['fd12:3456::1', 'unique local (fc00::/7)'],
      ['fe80::/10', 'link-local (fe80::/10)'],
      ['fe80::1', 'link-local (fe80::/10)'],
      ['febf::/16', 'link-local (fe80::/10)'],
      ['fc00::/6', null],
      ['fe00::/9', null],
      ['::/0', null],
      ['2001:db8::/32', null],
    ]
    for (const [entry, want] of cases) assert.equal(privateOnly(entry), want, entry)
  })
})
