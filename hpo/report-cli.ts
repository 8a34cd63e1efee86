/** `cirrus report <searchId|jobId>`: writes the HTML report of a search or a job to a file. */
import { randomBytes } from 'node:crypto';
import { rename, unlink, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { cirrusHome, openStore } from '../client/index.js';
import { renderReport } from './report.js';
import { loadReportData, type ReportData } from './report-data.js';

interface WriteReportOptions {
  /** Object store URL; default: the embedded S3 server under `home`. */
  store?: string;
  /** Output file; default `cirrus-report-<id>.html` in `cwd`. */
  out?: string;
  cwd?: string;
  /** Where the embedded store keeps its data (default $CIRRUS_HOME or .cirrus). */
  home?: string;
}

interface WrittenReport {
  path: string;
  data: ReportData;
}

/** Loads `id` from the store, renders it and publishes the page atomically at the output path. */
export async function writeReport(id: string, o: WriteReportOptions = {}): Promise<WrittenReport> {
  const cwd = o.cwd ?? process.cwd();
  const handle = await openStore(o.store, o.home);
  let data: ReportData;
  try {
    // The embedded store's S3 address lives only while this command runs: name its directory instead.
    data = await loadReportData(handle.datasets.store, id, o.store ?? `the embedded store in ${o.home ?? cirrusHome()}`);
  } finally {
    await handle.close();
  }
  const path = resolve(cwd, o.out ?? `cirrus-report-${id}.html`);
  // Temp file next to the target, then rename: a reader never sees half a page.
  const temp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    await writeFile(temp, renderReport(data), 'utf8');
    await rename(temp, path);
  } catch (e) {
    await unlink(temp).catch(() => undefined);
    throw e;
  }
  return { path, data };
}
