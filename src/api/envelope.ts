/** Sunbird's response envelope, as the platform's APIs return it. */
export interface Envelope {
  id: string;
  ver: string;
  ts: string;
  params: {
    resmsgid: string | null;
    msgid: string;
    err: string | null;
    status: 'success' | 'failed';
    errmsg: string | null;
  };
  responseCode: string;
  result: Record<string, unknown>;
}

export const API_ID = 'api.content.state.update';

/** "2021-03-04 05:58:04:382+0000": UTC, milliseconds after a colon, as the design shows. */
export function sunbirdTimestamp(date: Date): string {
  const p = (n: number, w = 2): string => String(n).padStart(w, '0');
  return (
    `${date.getUTCFullYear()}-${p(date.getUTCMonth() + 1)}-${p(date.getUTCDate())} ` +
    `${p(date.getUTCHours())}:${p(date.getUTCMinutes())}:${p(date.getUTCSeconds())}:${p(date.getUTCMilliseconds(), 3)}+0000`
  );
}

export function successEnvelope(msgid: string, now: Date, result: Record<string, unknown>): Envelope {
  return {
    id: API_ID,
    ver: 'v1',
    ts: sunbirdTimestamp(now),
    params: { resmsgid: null, msgid, err: null, status: 'success', errmsg: null },
    responseCode: 'OK',
    result,
  };
}

export function errorEnvelope(
  msgid: string,
  now: Date,
  err: string,
  errmsg: string,
  responseCode: string,
  result: Record<string, unknown> = {},
): Envelope {
  return {
    id: API_ID,
    ver: 'v1',
    ts: sunbirdTimestamp(now),
    params: { resmsgid: null, msgid, err, status: 'failed', errmsg },
    responseCode,
    result,
  };
}

/** The design's "No users enrolled" message: every requested id in single quotes. */
export function notEnrolledMessage(userIds: readonly string[], batchId: string, courseId: string): string {
  const ids = userIds.map((u) => `'${u}'`).join(', ');
  return `Could not find any enrollments for userId [${ids}], batchId '${batchId}' and courseId '${courseId}'`;
}
