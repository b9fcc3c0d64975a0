import { cqlStatements, DEFAULT_REPLICATION } from '../../src/migrate';

test('the CQL in schemas/ fills in keyspace and replication and splits into statements', () => {
  const statements = cqlStatements('ks_x', DEFAULT_REPLICATION);
  expect(statements[0]).toBe(`CREATE KEYSPACE IF NOT EXISTS ks_x\n  WITH replication = ${DEFAULT_REPLICATION}`);
  expect(statements.some((s) => s.startsWith('CREATE TABLE IF NOT EXISTS ks_x.user_enrolments'))).toBe(true);
  expect(statements.some((s) => s.includes('PRIMARY KEY (userid, courseid, batchid)'))).toBe(true);
  expect(statements.some((s) => s.startsWith('CREATE TABLE IF NOT EXISTS ks_x.course_batch'))).toBe(true);
  expect(statements.some((s) => /ON ks_x\.user_enrolments \(batchid\) USING 'sai'/.test(s))).toBe(true);
  expect(statements.every((s) => !s.includes('${'))).toBe(true);
});
