import { parseArgs, type ParseArgsConfig } from 'node:util';
import { SyncError } from '../errors';

/** The part of parseArgs's tokens read here. */
type Token = { kind: 'option'; name: string; value?: string } | { kind: 'positional' | 'option-terminator' };

export type Flags = Record<string, string | boolean | string[] | undefined>;

/**
 * A command line, strictly: unknown options are refused, and so is an option given twice that
 * takes one value. node's parseArgs keeps the last of those silently, so
 * `--batch-id a --batch-id b` would sync batch b alone while the operator meant two batches.
 * Every refusal is a SYNC_BAD_REQUEST naming the option.
 */
export function parseCommandLine(
  args: string[],
  options: ParseArgsConfig['options'],
  allowPositionals = false,
): { values: Flags; positionals: string[] } {
  let parsed: { values: unknown; positionals: string[]; tokens: Token[] };
  try {
    parsed = parseArgs({ args, options, strict: true, allowPositionals, tokens: true });
  } catch (err) {
    throw new SyncError('SYNC_BAD_REQUEST', (err as Error).message, { retriable: false });
  }
  const seen = new Map<string, string>();
  for (const token of parsed.tokens) {
    if (token.kind !== 'option' || options?.[token.name]?.multiple === true) continue;
    const shown = token.value ?? '(set)';
    const before = seen.get(token.name);
    if (before !== undefined) {
      throw new SyncError(
        'SYNC_BAD_REQUEST',
        `--${token.name} was given more than once ('${before}', then '${shown}'); give it once`,
        { retriable: false, field: token.name },
      );
    }
    seen.set(token.name, shown);
  }
  return { values: parsed.values as Flags, positionals: parsed.positionals };
}
