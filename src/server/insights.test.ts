import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { UsageError } from '../errors.js';
import { csvField, csvLine } from './insights.js';
import { parseInsightsQuery } from './params.js';

/** An RFC 4180 reader, written independently of csvField, to read back what it writes. */
function parseCsvLine(line: string): string[] {
  const out: string[] = [];
  let i = 0;
  for (;;) {
    let field = '';
    if (line[i] === '"') {
      i++;
      for (;;) {
        const q = line.indexOf('"', i);
        if (q < 0) throw new Error('unterminated quote');
        field += line.slice(i, q);
        i = q + 1;
        if (line[i] === '"') {
          field += '"';
          i++;
        } else break;
      }
    } else {
      const c = line.indexOf(',', i);
      const end = c < 0 ? line.length : c;
      field = line.slice(i, end);
      if (/["\r\n]/.test(field)) throw new Error(`bare field with a quote or line break: ${JSON.stringify(field)}`);
      i = end;
    }
    out.push(field);
    if (i >= line.length) return out;
    if (line[i] !== ',') throw new Error(`expected a comma at ${i}`);
    i++;
  }
}

describe('CSV fields', () => {
  it('quotes what needs quoting and defuses formulas', () => {
    expect(csvField('web')).toBe('web');
    expect(csvField(42)).toBe('42');
    expect(csvField('a,b')).toBe('"a,b"');
    expect(csvField('say "hi"')).toBe('"say ""hi"""');
    expect(csvField('two\nlines')).toBe('"two\nlines"');
    expect(csvField('=HYPERLINK("http://evil.example")')).toBe('"\'=HYPERLINK(""http://evil.example"")"');
    expect(csvField('+1')).toBe("'+1");
    expect(csvField('-1')).toBe("'-1");
    expect(csvField('@SUM(A1)')).toBe("'@SUM(A1)");
    expect(csvField('\tx')).toBe("'\tx");
    expect(csvLine(['a', 1, 'b,c'])).toBe('a,1,"b,c"\r\n');
  });

  it('reads back as the same text (formula cells with their apostrophe), for any strings', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ unit: 'binary' }), { minLength: 1, maxLength: 6 }), (fields) => {
        const line = csvLine(fields);
        expect(line.endsWith('\r\n')).toBe(true);
        const back = parseCsvLine(line.slice(0, -2));
        expect(back).toEqual(fields.map((f) => (/^[=+\-@\t\r]/.test(f) ? `'${f}` : f)));
        for (const cell of back) expect(cell).not.toMatch(/^[=+\-@\t\r]/);
      }),
      { numRuns: 500 },
    );
  });
});

describe('insights parameters', () => {
  const parse = (q: string, csv = false) => parseInsightsQuery(new URLSearchParams(q), csv);

  it('reads namespace, repository, dates and format', () => {
    expect(parse('namespace=web&from=2026-01-05&to=2026-03-01T12:00:00Z&interval=week')).toEqual({
      format: 'json',
      namespace: 'web',
      from: new Date('2026-01-05T00:00:00Z'),
      to: new Date('2026-03-01T12:00:00Z'),
    });
    expect(parse('repository=web/app&namespace=web&format=csv')).toMatchObject({ format: 'csv', repository: 'web/app', namespace: 'web' });
    expect(parse('', true)).toEqual({ format: 'csv' });
  });

  it('names the bad parameter and says how to fix it', () => {
    const cases: [string, string][] = [
      ['interval=month', 'parameter interval'],
      ['from=2026-13-01', 'parameter from'],
      ['to=01/02/2026', 'parameter to'],
      ['namespace=a/b', 'parameter namespace'],
      ['repository=Web', 'parameter repository'],
      ['repository=web/app&namespace=go', 'parameter repository'],
      ['from=2026-03-01&to=2026-01-01', 'parameter from'],
      ['format=html', 'parameter format'],
      ['namespace=a&namespace=b', 'parameter namespace'],
      ['limit=5', 'parameter limit'],
    ];
    for (const [q, name] of cases) {
      const err = (() => {
        try {
          parse(q);
          return undefined;
        } catch (e) {
          return e;
        }
      })();
      expect(err, q).toBeInstanceOf(UsageError);
      expect((err as UsageError).message, q).toContain(name);
    }
    expect(() => parse('format=json', true)).toThrow(/contradicts the \.csv path/);
  });
});
