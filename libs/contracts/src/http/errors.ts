/** The JSON body of every 4xx/5xx answer, on every HTTP port. */
export interface ApiErrorBody {
  error: {
    /** Stable machine code: `validation_failed`, `unauthorized`, `forbidden`, `not_found`, `rate_limited`, `unavailable`, … */
    code: string;
    message: string;
    /** Each problem, naming the field (dotted path, batch items as `updates.3.status`). */
    issues?: { path: string; message: string }[];
    /** `conflict` on a versioned write (stale `If-Match`): the version held now, to re-read and retry. */
    currentVersion?: number;
  };
}

export enum ApiErrorCode {
  ValidationFailed = 'validation_failed',
  Unauthorized = 'unauthorized',
  Forbidden = 'forbidden',
  NotFound = 'not_found',
  /** 405, with `Allow`: the path exists, the method does not (a ping sent with PUT). */
  MethodNotAllowed = 'method_not_allowed',
  Conflict = 'conflict',
  /** 422: well-formed but refused by policy (a check whose target the deny list forbids). */
  Denied = 'denied',
  PayloadTooLarge = 'payload_too_large',
  UnsupportedMediaType = 'unsupported_media_type',
  RateLimited = 'rate_limited',
  Unavailable = 'unavailable',
  Internal = 'internal',
}
