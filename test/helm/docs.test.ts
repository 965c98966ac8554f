/** The chart README: its values table is the one values.yaml generates, and the sections users need exist. */
import { describe, expect, it } from 'vitest';
import { readChartFile, valueEntries } from './chart.js';
import { readmeWithTable, TABLE_END, TABLE_START, valuesTable } from './values-table.js';

const readme = readChartFile('README.md');

describe('helm/stsgate/README.md', () => {
  it('has the values table that values.yaml generates (npx tsx test/helm/values-table.ts --write)', () => {
    expect(readme).toContain(TABLE_START);
    expect(readme).toContain(TABLE_END);
    expect(readmeWithTable(readme)).toBe(readme);
  });

  it('lists every value, with its type, default and description', () => {
    const table = valuesTable();
    for (const entry of valueEntries(readChartFile('values.yaml'))) {
      expect(table).toMatch(new RegExp(`^\\| \`${entry.path.replace(/\./g, '\\.')}\` \\| [^|]+ \\| [^|]+ \\| [^|]*[A-Za-z][^|]* \\|$`, 'm'));
    }
    expect(table).not.toContain('(undocumented)');
  });

  it('gives the install command, the Secrets to create, and says what was not run', () => {
    expect(readme).toMatch(/helm upgrade --install stsgate \.\/helm\/stsgate/);
    expect(readme).toContain('examples/production-values.yaml');
    expect(readme).toMatch(/kubectl -n stsgate create secret generic stsgate-signing/);
    expect(readme).toMatch(/^## Tests, and what was not run here$/m);
    expect(readme).toMatch(/No Docker engine/);
    expect(readme).toMatch(/No Kubernetes cluster/);
  });
});
