/** API keys for fine-tune actions (create, cancel, rollback, upload), compared in constant time. */
import { createHash, timingSafeEqual } from 'node:crypto';
import { FinetuneError } from './errors';

const digest = (key: string) => createHash('sha256').update(key, 'utf8').digest();

export class AccessKeys {
  private readonly digests: Buffer[];

  constructor(
    keys: readonly string[],
    private readonly disabled = false,
  ) {
    this.digests = keys.filter((k) => k.length > 0).map(digest);
  }

  /** Throws unless `presented` is one of the keys (or checks were switched off on purpose). */
  check(presented: string | undefined, action: string): void {
    if (this.disabled) return;
    if (this.digests.length === 0) {
      throw new FinetuneError('forbidden', `${action} is disabled: no fine-tune API key is configured`);
    }
    if (!presented) throw new FinetuneError('unauthenticated', `${action} needs a fine-tune API key (header "Authorization: Bearer <key>" or "x-api-key")`);
    const candidate = digest(presented);
    let match = false;
    // Every key is compared, so the time taken does not tell which one (if any) matched.
    for (const d of this.digests) match = timingSafeEqual(d, candidate) || match;
    if (!match) throw new FinetuneError('forbidden', `${action}: the API key is not valid`);
  }
}
