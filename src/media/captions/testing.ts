// Test helpers for the captions module.
import assert from 'node:assert/strict';
import { SmoothcastError } from '../../core/errors.ts';

/** Asserts that `fn` throws a CAPTION_INVALID SmoothcastError whose message matches `message`. */
export function assertCaptionInvalid(fn: () => unknown, message?: RegExp, label?: string): void {
  assertSmoothcastError(fn, 'CAPTION_INVALID', message, label);
}

export function assertSmoothcastError(fn: () => unknown, code: string, message?: RegExp, label?: string): void {
  assert.throws(
    fn,
    (err: unknown) => {
      assert.ok(err instanceof SmoothcastError, `${label ?? ''}: not a SmoothcastError: ${String(err)}`);
      assert.equal(err.code, code, label);
      if (message) assert.match(err.message, message, label);
      return true;
    },
    label,
  );
}
