// A small bounded memo for pure functions of a string.

/**
 * Every hook of every session asks about the same few addresses and names: the
 * last `size` answers of `make` are remembered (oldest dropped first). Answers
 * must be immutable.
 */
export function memo<T>(size: number, make: (key: string) => T): (key: string) => T {
  const cache = new Map<string, T>()
  return (key) => {
    if (cache.has(key)) return cache.get(key) as T
    const value = make(key)
    if (cache.size >= size) cache.delete(cache.keys().next().value as string)
    cache.set(key, value)
    return value
  }
}
