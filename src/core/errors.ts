// One registry of stable error codes. A code never changes meaning once released; clients may switch on it.
// `status` is the HTTP status the API answers with; `permanent` tells the job queue not to retry (bad input).

export const ERRORS = {
  // configuration and start-up
  CONFIG_INVALID: { status: 500, permanent: true, message: 'invalid configuration' },
  // HTTP API
  BAD_REQUEST: { status: 400, permanent: true, message: 'bad request' },
  INVALID_ID: { status: 400, permanent: true, message: 'invalid id' },
  NOT_FOUND: { status: 404, permanent: true, message: 'not found' },
  ASSET_NOT_FOUND: { status: 404, permanent: true, message: 'asset not found' },
  ASSET_NOT_PLAYABLE: { status: 409, permanent: true, message: 'asset is not playable yet' },
  RANGE_NOT_SATISFIABLE: { status: 416, permanent: true, message: 'range not satisfiable' },
  PAYLOAD_TOO_LARGE: { status: 413, permanent: true, message: 'payload too large' },
  INTERNAL: { status: 500, permanent: false, message: 'internal error' },
  // uploads (tus protocol errors keep tus's own statuses and bodies; these are our API around them)
  UPLOAD_NOT_FOUND: { status: 404, permanent: true, message: 'no such upload' },
  UPLOAD_INCOMPLETE: { status: 409, permanent: true, message: 'the upload has not finished' },
  UPLOAD_TOO_LARGE: { status: 413, permanent: true, message: 'the upload is larger than allowed' },
  UPLOAD_FAILED: { status: 502, permanent: false, message: 'the upload could not be completed (network or server)' },
  // input media (permanent: retrying cannot help)
  MEDIA_NOT_FOUND: { status: 422, permanent: true, message: 'source file not found' },
  MEDIA_UNREADABLE: { status: 422, permanent: true, message: 'not a media file ffmpeg can read' },
  MEDIA_NO_VIDEO: { status: 422, permanent: true, message: 'no decodable video stream' },
  MEDIA_TOO_LARGE: { status: 422, permanent: true, message: 'source file is larger than allowed' },
  MEDIA_TOO_LONG: { status: 422, permanent: true, message: 'source is longer than allowed' },
  MEDIA_RESOLUTION_TOO_LARGE: { status: 422, permanent: true, message: 'frame size is larger than allowed' },
  MEDIA_TRUNCATED: { status: 422, permanent: true, message: 'source is truncated or damaged' },
  MEDIA_DECODE_FAILED: { status: 422, permanent: true, message: 'source could not be decoded' },
  // processing (transient unless said otherwise)
  PROBE_FAILED: { status: 500, permanent: false, message: 'ffprobe failed' },
  PROBE_TIMEOUT: { status: 500, permanent: false, message: 'ffprobe timed out' },
  ENCODE_FAILED: { status: 500, permanent: false, message: 'ffmpeg failed' },
  ENCODE_TIMEOUT: { status: 500, permanent: false, message: 'ffmpeg timed out' },
  ENCODE_OUTPUT_INVALID: { status: 500, permanent: false, message: 'encoder output failed verification' },
  JOB_CANCELLED: { status: 409, permanent: true, message: 'job cancelled' },
  JOB_ALREADY_ACTIVE: { status: 409, permanent: true, message: 'the asset already has an active job of this type' },
  JOB_LEASE_LOST: { status: 500, permanent: false, message: 'the worker lost its job lease' },
  ASSET_STATE_CONFLICT: { status: 409, permanent: true, message: 'the asset is in a state that does not allow this' },
  DB_SCHEMA_TOO_NEW: { status: 500, permanent: true, message: 'the database was written by a newer smoothcast' },
  DB_SCHEMA_OLD: {
    status: 500,
    permanent: true,
    message: 'the database schema is older than this smoothcast: run smoothcast migrate',
  },
  DB_UNAVAILABLE: { status: 503, permanent: false, message: 'the database is unreachable' },
  DB_BUSY: { status: 503, permanent: false, message: 'the database is too busy: try again' },
  // captions and subtitles (sidecar files: bad input never changes anything)
  CAPTION_INVALID: { status: 400, permanent: true, message: 'not a valid WebVTT or SubRip file' },
  CAPTION_TOO_LARGE: { status: 413, permanent: true, message: 'the caption file is larger than allowed' },
  CAPTION_NOT_FOUND: { status: 404, permanent: true, message: 'no such caption track' },
  LANGUAGE_INVALID: { status: 400, permanent: true, message: 'not a known BCP 47 language tag' },
  // object storage (local disk or S3)
  STORAGE_UNAVAILABLE: {
    status: 503,
    permanent: false,
    message: 'the object store could not be reached or failed the request',
  },
  STORAGE_OBJECT_EXISTS: { status: 409, permanent: true, message: 'an object exists under this storage key' },
  STORAGE_NOT_LOCAL: { status: 500, permanent: true, message: 'this storage backend has no local file paths' },
  // pure media parsing
  BMFF_MALFORMED: { status: 500, permanent: true, message: 'malformed ISO-BMFF data' },
  BMFF_UNSUPPORTED: { status: 500, permanent: true, message: 'unsupported ISO-BMFF content' },
  // live ingest
  RTMP_PROTOCOL: { status: 400, permanent: true, message: 'malformed or unexpected RTMP data' },
  // live publishing points and delivery
  LIVE_NOT_FOUND: { status: 404, permanent: true, message: 'live stream not found' },
  LIVE_STATE_CONFLICT: { status: 409, permanent: true, message: "not allowed in the live stream's current state" },
  LIVE_TIMELINE_INVALID: { status: 500, permanent: true, message: 'live media time went backwards or overlaps' },
  LIVE_KEY_INVALID: { status: 403, permanent: true, message: 'unknown stream key or passphrase' },
  LIVE_INIT_MISSING: { status: 412, permanent: true, message: "a media fragment came before its track's init" },
  LIVE_MEDIA_UNSUPPORTED: { status: 415, permanent: true, message: 'media this live ingest does not take' },
  LIVE_TARGET_INVALID: { status: 400, permanent: true, message: 'not a push target URL this server can forward to' },
  LIVE_TARGET_NOT_FOUND: { status: 404, permanent: true, message: 'no such push target' },
  // accounts, API tokens, sessions (issue 10)
  AUTH_REQUIRED: { status: 401, permanent: true, message: 'sign in or send Authorization: Bearer TOKEN' },
  AUTH_INVALID: { status: 401, permanent: true, message: 'the token or session is unknown, revoked or expired' },
  SCOPE_MISSING: { status: 403, permanent: true, message: 'the credential lacks the scope this route needs' },
  CSRF_INVALID: { status: 403, permanent: true, message: 'missing or wrong X-CSRF-Token for a cookie session' },
  LOGIN_FAILED: { status: 401, permanent: true, message: 'wrong name or password' },
  LOGIN_RATE_LIMITED: { status: 429, permanent: false, message: 'too many failed logins: wait and try again' },
  SETUP_CODE_INVALID: { status: 403, permanent: true, message: 'wrong or used setup code' },
  SETUP_DONE: { status: 409, permanent: true, message: 'the first admin exists already: sign in' },
  USER_NOT_FOUND: { status: 404, permanent: true, message: 'no such user' },
  USER_EXISTS: { status: 409, permanent: true, message: 'a user with this name exists' },
  TOKEN_NOT_FOUND: { status: 404, permanent: true, message: 'no such API token' },
  RATE_LIMITED: { status: 429, permanent: false, message: 'too many requests: slow down' },
  // direct uploads
  DIRECT_UPLOAD_INVALID: { status: 403, permanent: true, message: 'unknown, expired or already used upload URL' },
  // signed playback
  PLAYBACK_TOKEN_REQUIRED: { status: 403, permanent: true, message: 'this media needs a playback token' },
  PLAYBACK_TOKEN_INVALID: { status: 403, permanent: true, message: 'the playback token is not valid' },
  PLAYBACK_TOKEN_EXPIRED: { status: 403, permanent: true, message: 'the playback token has expired' },
  PLAYBACK_TOKEN_WRONG_ASSET: { status: 403, permanent: true, message: 'the playback token is for other media' },
  PLAYBACK_TOKEN_WRONG_AUD: {
    status: 403,
    permanent: true,
    message: 'the playback token does not allow this kind of request',
  },
  PLAYBACK_TOKEN_KEY_REVOKED: {
    status: 403,
    permanent: true,
    message: 'the key that signed this playback token was revoked',
  },
  PLAYBACK_TOKEN_WRONG_IP: { status: 403, permanent: true, message: 'the playback token is bound to another address' },
  SIGNING_KEY_NOT_FOUND: { status: 404, permanent: true, message: 'no such signing key' },
  // viewer limits
  VIEWER_LIMIT_REACHED: {
    status: 429,
    permanent: false,
    message: 'this video has as many viewers as it allows: try again later',
  },
  SESSION_LIMIT_REACHED: {
    status: 429,
    permanent: false,
    message: 'this address has as many playback sessions as allowed',
  },
  // encryption
  KEY_NOT_FOUND: { status: 404, permanent: true, message: 'no such content key' },
  ENCRYPTION_UNSUPPORTED: { status: 409, permanent: true, message: 'this encryption cannot be applied to this media' },
  // webhooks
  WEBHOOK_NOT_FOUND: { status: 404, permanent: true, message: 'no such webhook' },
  WEBHOOK_URL_INVALID: { status: 400, permanent: true, message: 'a webhook URL is http(s)://host[:port]/path' },
} as const satisfies Record<string, { status: number; permanent: boolean; message: string }>;

export type ErrorCode = keyof typeof ERRORS;

export function isErrorCode(s: unknown): s is ErrorCode {
  return typeof s === 'string' && Object.hasOwn(ERRORS, s);
}

export class SmoothcastError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly permanent: boolean;
  /** Extra diagnosis for logs (e.g. ffmpeg's stderr tail); never sent to API clients. */
  readonly detail: string | undefined;

  constructor(code: ErrorCode, message?: string, options?: { cause?: unknown; detail?: string }) {
    super(message ?? ERRORS[code].message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'SmoothcastError';
    this.code = code;
    this.status = ERRORS[code].status;
    this.permanent = ERRORS[code].permanent;
    this.detail = options?.detail;
  }

  toJSON(): { code: ErrorCode; message: string } {
    return { code: this.code, message: this.message };
  }
}

/** Any thrown value as a SmoothcastError (unknown errors become INTERNAL, keeping the cause). */
export function asSmoothcastError(err: unknown): SmoothcastError {
  if (err instanceof SmoothcastError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new SmoothcastError('INTERNAL', message, { cause: err });
}
