// One error class per way the store can fail; the glue answers each with a 4xx for IPv6 peers.
import { ReplyError } from 'ioredis'

/** Base of every store failure. */
export class StoreError extends Error {
  constructor(message: string) {
    super(message)
    this.name = new.target.name
  }
}
/** Redis is not connected (down, restarting, wrong address). */
export class StoreUnavailableError extends StoreError {}
/** Redis did not answer within the configured bound. */
export class StoreTimeoutError extends StoreError {}
/** Redis answered with an error, e.g. WRONGTYPE for a key of the wrong type. */
export class StoreReplyError extends StoreError {}

/**
 * A client's failure as a StoreError. ioredis reports its commandTimeout as "Command timed
 * out"; any other non-ReplyError means the connection went away under the command.
 */
export function toStoreError(err: Error): StoreError {
  if (err instanceof StoreError) return err
  return /timed out/i.test(err.message) ? new StoreTimeoutError(err.message) : err instanceof ReplyError ? new StoreReplyError(err.message) : new StoreUnavailableError(err.message)
}

/** The work's failures as StoreErrors, for a client that bounds every command itself. */
export function asStoreErrors<T>(work: Promise<T>): Promise<T> {
  return work.catch((err: Error) => Promise.reject(toStoreError(err)))
}

/** The work within `ms` (else a StoreTimeoutError), its failures as StoreErrors. */
export function within<T>(work: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new StoreTimeoutError(`no answer from redis within ${ms} ms`)), ms)
    work.then(
      (v) => {
        clearTimeout(timer)
        resolve(v)
      },
      (err: Error) => {
        clearTimeout(timer)
        reject(toStoreError(err))
      },
    )
  })
}
