import { FleetwardError } from '@fleetward/protocol';

/** Limits of a manufacturing CSV, so a malformed file cannot exhaust memory. */
export const CSV_LIMITS = { maxRows: 1_000_000, maxFields: 100, maxFieldLength: 4096 } as const;

/**
 * Reads RFC 4180 CSV: comma separated, fields optionally in double quotes (a quote inside is
 * doubled), CRLF or LF line ends. The first row names the columns; every row must have that many
 * fields. Returns one record per row, keyed by column name. Pure.
 */
export function parseCsv(text: string): { readonly columns: readonly string[]; readonly rows: readonly Readonly<Record<string, string>>[] } {
  const records = splitRecords(text.replace(/^\uFEFF/, ''));
  const header = records.shift();
  if (header === undefined || header.every((f) => f === '')) throw invalid(1, 'the header row is missing');
  const columns = header.map((c) => c.trim());
  if (new Set(columns).size !== columns.length) throw invalid(1, 'a column name appears twice');
  const rows = records.map((fields, index) => {
    if (fields.length !== columns.length) throw invalid(index + 2, `${fields.length} fields where the header has ${columns.length}`);
    return Object.fromEntries(columns.map((column, i) => [column, fields[i] as string]));
  });
  return { columns, rows };
}

function splitRecords(text: string): string[][] {
  const records: string[][] = [];
  let fields: string[] = [];
  let field = '';
  let quoted = false;
  /** Whether the current record had any character: `""` is a row with one empty field, not a blank line. */
  let touched = false;
  let line = 1;
  let i = 0;
  const endField = () => {
    if (field.length > CSV_LIMITS.maxFieldLength) throw invalid(line, `a field is longer than ${CSV_LIMITS.maxFieldLength} characters`);
    fields.push(field);
    if (fields.length > CSV_LIMITS.maxFields) throw invalid(line, `more than ${CSV_LIMITS.maxFields} fields`);
    field = '';
  };
  const endRecord = () => {
    endField();
    if (touched) records.push(fields);
    touched = false;
    if (records.length > CSV_LIMITS.maxRows + 1) throw invalid(line, `more than ${CSV_LIMITS.maxRows} rows`);
    fields = [];
    line += 1;
  };
  while (i < text.length) {
    const c = text[i] as string;
    if (c !== '\n' && c !== '\r') touched = true;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i += 2;
        continue;
      }
      if (c === '"') {
        quoted = false;
        i += 1;
        if (i < text.length && !',\r\n'.includes(text[i] as string)) throw invalid(line, 'text after a closing quote');
        continue;
      }
      if (c === '\n') line += 1;
      field += c;
      i += 1;
      continue;
    }
    if (c === '"') {
      if (field !== '') throw invalid(line, 'a quote inside an unquoted field');
      quoted = true;
    } else if (c === ',') endField();
    else if (c === '\n') endRecord();
    else if (c === '\r') {
      if (text[i + 1] !== '\n') throw invalid(line, 'a carriage return without a line feed');
    } else field += c;
    i += 1;
  }
  if (quoted) throw invalid(line, 'a quoted field is not closed');
  if (touched) endRecord();
  return records;
}

function invalid(line: number, why: string): FleetwardError {
  return new FleetwardError('FW_ERR_VALIDATION', `CSV line ${line}: ${why}`, { line });
}
