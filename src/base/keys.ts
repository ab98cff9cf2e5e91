/** API keys, checked in constant time; one checker for every key-protected action. */
import { createHash, timingSafeEqual } from 'node:crypto';
import { TridentError } from './errors';

const digest = (key: string) => createHash('sha256').update(key, 'utf8').digest();

export interface KeyCheckerOptions {
  /** Checks switched off on purpose (an explicit flag). */
  disabled?: boolean;
  /** What the key is called in messages, e.g. "a fine-tune API key". */
  name: string;
  /** How an operator configures keys, for the message when none is configured. */
  configure: string;
}

export class KeyChecker {
  private readonly digests: Buffer[];

  constructor(
    keys: readonly string[],
    private readonly options: KeyCheckerOptions,
  ) {
    this.digests = keys.filter((k) => k.length > 0).map(digest);
  }

  /** Throws unless `presented` is one of the keys (or checks were switched off). */
  check(presented: string | undefined, action: string): void {
    if (this.options.disabled) return;
    if (this.digests.length === 0) throw new TridentError('permission_denied', `${action} is disabled: ${this.options.configure}`);
    if (!presented) throw new TridentError('unauthenticated', `${action} needs ${this.options.name} (header "Authorization: Bearer <key>" or "x-api-key")`);
    const candidate = digest(presented);
    let match = false;
    // Every key is compared, so the time taken does not tell which one (if any) matched.
    for (const d of this.digests) match = timingSafeEqual(d, candidate) || match;
    if (!match) throw new TridentError('permission_denied', `${action}: the API key is not valid`);
  }
}

/** The key from `Authorization: Bearer <key>` or `x-api-key: <key>`. */
export function presentedKey(authorization: string | undefined, apiKeyHeader: string | undefined): string | undefined {
  const bearer = authorization?.match(/^Bearer\s+(.+)$/i)?.[1];
  return bearer ?? apiKeyHeader ?? undefined;
}
