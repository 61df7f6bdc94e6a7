// Bounded maps: a memo for pure functions of a string, and the insertion they share
// with the DNS and peer list caches.

/**
 * Sets `key` in a map that holds at most `max` entries: when a new key would
 * exceed it, the oldest entry (first inserted) goes.
 */
export function setBounded<K, V>(map: Map<K, V>, key: K, value: V, max: number): void {
  if (map.size >= max && !map.has(key)) map.delete(map.keys().next().value as K)
  map.set(key, value)
}

/**
 * Every hook of every session asks about the same few addresses and names: the
 * last `size` answers of `make` are remembered (oldest dropped first). Answers
 * must be immutable.
 */
export function memo<T>(size: number, make: (key: string) => T): (key: string) => T {
  const cache = new Map<string, T>()
  return (key) => {
    // One lookup for a hit (answers are never undefined unless make() returns it).
    const hit = cache.get(key)
    if (hit !== undefined || cache.has(key)) return hit as T
    const value = make(key)
    setBounded(cache, key, value, size)
    return value
  }
}
