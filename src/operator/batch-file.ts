import { SyncError } from '../errors';

export interface BatchRow {
  courseId: string;
  batchId: string;
  /** 1-based line number in the file, for messages. */
  line: number;
}

const MAX_ID_LENGTH = 1024;

/**
 * Reads a list of batches: one `courseId,batchId` per line; an optional header line
 * `courseId,batchId`; blank lines and lines starting with # are skipped; fields may be quoted
 * with "…" (a doubled "" inside is a quote). Every bad row is reported by its line number, all at
 * once, before anything is queued.
 */
export function parseBatchFile(text: string, name = 'file'): BatchRow[] {
  const rows: BatchRow[] = [];
  const problems: string[] = [];
  const seen = new Set<string>();
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = i + 1;
    const trimmed = raw.trim();
    if (trimmed === '' || trimmed.startsWith('#')) return;
    let fields: string[];
    try {
      fields = splitCsvLine(trimmed);
    } catch (err) {
      problems.push(`${name} line ${line}: ${(err as Error).message}`);
      return;
    }
    if (
      rows.length === 0 &&
      problems.length === 0 &&
      /^courseid$/i.test(fields[0] ?? '') &&
      /^batchid$/i.test(fields[1] ?? '')
    ) {
      return; // header
    }
    if (fields.length !== 2) {
      problems.push(`${name} line ${line}: expected 2 fields (courseId,batchId), found ${fields.length}`);
      return;
    }
    const [courseId, batchId] = fields.map((f) => f.trim()) as [string, string];
    for (const [field, value] of [
      ['courseId', courseId],
      ['batchId', batchId],
    ] as const) {
      if (value === '') problems.push(`${name} line ${line}: ${field} is empty`);
      else if (value.length > MAX_ID_LENGTH)
        problems.push(`${name} line ${line}: ${field} is longer than ${MAX_ID_LENGTH} characters`);
    }
    if (courseId === '' || batchId === '' || courseId.length > MAX_ID_LENGTH || batchId.length > MAX_ID_LENGTH) return;
    const key = `${courseId}\u0000${batchId}`;
    if (seen.has(key)) return; // the same batch twice is one sync
    seen.add(key);
    rows.push({ courseId, batchId, line });
  });
  if (problems.length > 0) {
    throw new SyncError('SYNC_BAD_REQUEST', problems.join('\n'), { retriable: false, field: 'file' });
  }
  if (rows.length === 0)
    throw new SyncError('SYNC_BAD_REQUEST', `${name} lists no batch`, { retriable: false, field: 'file' });
  return rows;
}

function splitCsvLine(line: string): string[] {
  const fields: string[] = [];
  let i = 0;
  for (;;) {
    let field = '';
    let start = i;
    while (line[start] === ' ') start++;
    if (line[start] === '"') {
      i = start;
      i++;
      for (;;) {
        if (i >= line.length) throw new Error('a quoted field is not closed');
        if (line[i] === '"') {
          if (line[i + 1] === '"') {
            field += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        field += line[i++];
      }
      while (line[i] === ' ') i++;
      if (i < line.length && line[i] !== ',') throw new Error('text after a closing quote');
    } else {
      const next = line.indexOf(',', i);
      field = next < 0 ? line.slice(i) : line.slice(i, next);
      i = next < 0 ? line.length : next;
    }
    fields.push(field);
    if (i >= line.length) return fields;
    i++; // the comma
  }
}
