/** API keys for repository management, compared in constant time. */
import { createHash, timingSafeEqual } from 'node:crypto';
import { ServiceError } from './errors';

const digest = (key: string) => createHash('sha256').update(key).digest();

export class ApiKeys {
  private readonly digests: Buffer[];

  constructor(
    keys: readonly string[],
    private readonly disabled: boolean,
  ) {
    this.digests = keys.filter((k) => k.length > 0).map(digest);
  }

  /** Throws unless `presented` is one of the keys (or checks were explicitly disabled). */
  check(presented: string | undefined, action: string): void {
    if (this.disabled) return;
    if (this.digests.length === 0) {
      throw new ServiceError('permission_denied', `${action} is disabled: start the server with --api-key (or TRIDENT_API_KEYS), or --no-auth to allow it without a key`);
    }
    if (!presented) throw new ServiceError('unauthenticated', `${action} needs an API key (header "Authorization: Bearer <key>" or "x-api-key")`);
    const candidate = digest(presented);
    let match = false;
    for (const d of this.digests) match = timingSafeEqual(d, candidate) || match;
    if (!match) throw new ServiceError('permission_denied', `${action}: the API key is not valid`);
  }
}

/** The key from `Authorization: Bearer <key>` or `x-api-key: <key>`. */
export function presentedKey(authorization: string | undefined, apiKeyHeader: string | undefined): string | undefined {
  const bearer = authorization?.match(/^Bearer\s+(.+)$/i)?.[1];
  return bearer ?? apiKeyHeader ?? undefined;
}
