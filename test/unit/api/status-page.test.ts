import { createHash } from 'node:crypto';
import { STATUS_PAGE_HEADERS, STATUS_PAGE_HTML } from '../../../src/api/status-page';

/** The page's promises that a browser test would not notice breaking: no outside code, no HTML from data. */
describe('status page document', () => {
  const script = /<script>([\s\S]*)<\/script>/.exec(STATUS_PAGE_HTML)?.[1] ?? '';
  const style = /<style>([\s\S]*)<\/style>/.exec(STATUS_PAGE_HTML)?.[1] ?? '';

  test('loads nothing from anywhere: no src, no href, no external URL', () => {
    expect(script.length).toBeGreaterThan(1000);
    expect(STATUS_PAGE_HTML).not.toMatch(/\s(src|href)=/i);
    expect(STATUS_PAGE_HTML).not.toMatch(/https?:\/\//);
  });

  test('never parses data as HTML', () => {
    expect(script).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function/);
    expect(script).toMatch(/textContent/);
  });

  test('the CSP allows exactly its own inline script and style, by hash', () => {
    const hash = (text: string) => `'sha256-${createHash('sha256').update(text).digest('base64')}'`;
    const csp = STATUS_PAGE_HEADERS['Content-Security-Policy'] ?? '';
    expect(csp).toContain(`script-src ${hash(script)}`);
    expect(csp).toContain(`style-src ${hash(style)}`);
    expect(csp).toMatch(/default-src 'none'/);
    expect(csp).not.toMatch(/unsafe/);
  });
});
