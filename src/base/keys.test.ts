import { KeyChecker, presentedKey } from './keys';

const options = { name: 'a test key', configure: 'configure one with --key' };

describe('KeyChecker', () => {
  it('accepts any configured key, and refuses a missing or unknown one with the right code', () => {
    const keys = new KeyChecker(['k1', 'k2'], options);
    expect(() => keys.check('k2', 'job creation')).not.toThrow();
    expect(() => keys.check(undefined, 'job creation')).toThrow(expect.objectContaining({ code: 'unauthenticated', message: expect.stringMatching(/needs a test key/) }));
    expect(() => keys.check('k3', 'job creation')).toThrow(expect.objectContaining({ code: 'permission_denied', message: 'job creation: the API key is not valid' }));
  });

  it('refuses everything when no key is configured, saying how to configure one, unless switched off', () => {
    expect(() => new KeyChecker([], options).check('k1', 'rollback')).toThrow(expect.objectContaining({ code: 'permission_denied', message: 'rollback is disabled: configure one with --key' }));
    expect(() => new KeyChecker([''], options).check('', 'rollback')).toThrow(expect.objectContaining({ code: 'permission_denied' }));
    expect(() => new KeyChecker([], { ...options, disabled: true }).check(undefined, 'rollback')).not.toThrow();
  });

  it('reads the key from a bearer token or x-api-key', () => {
    expect(presentedKey('Bearer abc', undefined)).toBe('abc');
    expect(presentedKey('bearer   abc', 'other')).toBe('abc');
    expect(presentedKey('Basic abc', 'k')).toBe('k');
    expect(presentedKey(undefined, undefined)).toBeUndefined();
  });
});
