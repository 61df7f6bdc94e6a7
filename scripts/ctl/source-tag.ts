// How a list entry says which provider source owns it: its hash value is `source:<name>`
// (mx6ctl sync writes exactly that; text may follow after a space). Kept apart so that
// lists.ts (rm) and sync read the same rule.

/** A source name: lower case, digits, ".", "_", "-"; no braces (the source set's key holds a Cluster hash tag). */
export const SOURCE_NAME = /^[a-z0-9][a-z0-9._-]{0,31}$/

/** The hash value that marks an entry as owned by source `name`. */
export function sourceTag(name: string): string {
  return `source:${name}`
}

/** The source a list entry's note names, or null for the operator's own entries. */
export function taggedSource(note: string): string | null {
  const m = /^source:([a-z0-9][a-z0-9._-]{0,31})(?: |$)/.exec(note)
  return m ? m[1] : null
}
