import { MAX_ID_LENGTH } from '../../processors/enrolment-sync/trigger';

export interface SyncRequest {
  courseId: string;
  batchId: string;
  userIds: string[];
}

export interface ValidationFailure {
  err: 'MANDATORY_PARAMETER_MISSING' | 'INVALID_PARAMETER_VALUE' | 'INVALID_PARAMETER_TYPE' | 'TOO_MANY_USERS';
  field: string;
  message: string;
}

type Result = { ok: true; value: SyncRequest } | { ok: false; failure: ValidationFailure };

const fail = (err: ValidationFailure['err'], field: string, message: string): Result => ({
  ok: false,
  failure: { err, field, message },
});

function checkId(value: unknown, field: string): Result | string {
  if (value === undefined || value === null)
    return fail('MANDATORY_PARAMETER_MISSING', field, `Mandatory parameter ${field} is missing.`);
  if (typeof value !== 'string') return fail('INVALID_PARAMETER_TYPE', field, `Parameter ${field} must be a string.`);
  if (value.trim() === '') return fail('MANDATORY_PARAMETER_MISSING', field, `Mandatory parameter ${field} is empty.`);
  if (value.length > MAX_ID_LENGTH)
    return fail('INVALID_PARAMETER_VALUE', field, `Parameter ${field} is longer than ${MAX_ID_LENGTH} characters.`);
  return value;
}

/**
 * Checks the body in the documented order: courseId (or its alias collectionId), batchId,
 * userId. The first failure is reported, naming its field.
 */
export function validateSyncRequest(body: unknown, maxUsers: number): Result {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    return fail('INVALID_PARAMETER_TYPE', 'request', 'Request body must be a JSON object with a request field.');
  }
  const request = (body as Record<string, unknown>).request;
  if (request === undefined || request === null)
    return fail('MANDATORY_PARAMETER_MISSING', 'request', 'Mandatory parameter request is missing.');
  if (typeof request !== 'object' || Array.isArray(request))
    return fail('INVALID_PARAMETER_TYPE', 'request', 'Parameter request must be an object.');
  const req = request as Record<string, unknown>;

  const hasCourse = req.courseId !== undefined && req.courseId !== null;
  const hasCollection = req.collectionId !== undefined && req.collectionId !== null;
  const courseField = hasCourse || !hasCollection ? 'courseId' : 'collectionId';
  const courseId = checkId(hasCourse ? req.courseId : req.collectionId, courseField);
  if (typeof courseId !== 'string') {
    if (!hasCourse && !hasCollection)
      return fail(
        'MANDATORY_PARAMETER_MISSING',
        'courseId',
        'Mandatory parameter courseId (or collectionId) is missing.',
      );
    return courseId;
  }
  if (hasCourse && hasCollection && req.collectionId !== req.courseId) {
    return fail(
      'INVALID_PARAMETER_VALUE',
      'collectionId',
      'Parameters courseId and collectionId differ; send one of them.',
    );
  }

  const batchId = checkId(req.batchId, 'batchId');
  if (typeof batchId !== 'string') return batchId;

  const rawUser = req.userId;
  let userIds: string[];
  if (Array.isArray(rawUser)) {
    if (rawUser.length === 0)
      return fail('MANDATORY_PARAMETER_MISSING', 'userId', 'Mandatory parameter userId is an empty list.');
    const unique = new Set<string>();
    for (let i = 0; i < rawUser.length; i++) {
      const id = checkId(rawUser[i], `userId[${i}]`);
      if (typeof id !== 'string') return id;
      unique.add(id);
    }
    userIds = [...unique];
  } else {
    const id = checkId(rawUser, 'userId');
    if (typeof id !== 'string') {
      if (rawUser !== undefined && rawUser !== null && typeof rawUser !== 'string') {
        return fail('INVALID_PARAMETER_TYPE', 'userId', 'Parameter userId must be a string or a list of strings.');
      }
      return id;
    }
    userIds = [id];
  }
  if (userIds.length > maxUsers) {
    return fail(
      'TOO_MANY_USERS',
      'userId',
      `Parameter userId lists ${userIds.length} distinct users; at most ${maxUsers} are allowed per request.`,
    );
  }
  return { ok: true, value: { courseId, batchId, userIds } };
}
