// The PowerSync JS AttachmentQueue (@powersync/node) as a peer of `cargo xtask bench`: the same
// files, the same S3 server (ATTACHMENTS_TEST_S3_*), each run a process of its own. `xtask`
// times it from spawn to exit, like the Rust queue; this prints the in-process figures as
// `result seconds=<f> saved_seconds=<f> count=<n> peak_rss_mib=<f>`.
//
//   node bench.mjs upload --source DIR --work DIR --prefix P
//     saves every file of DIR through `saveFile` (16 at once, as the Rust queue), each
//     referenced from a local table in the same transaction, and waits until all are SYNCED;
//     writes the ids to WORK/manifest.txt
//   node bench.mjs download --manifest FILE --work DIR --prefix P
//     a second device references every id of the manifest and waits until all are SYNCED
//
// The database is a local PowerSync database (no sync service connected): the queue, its table
// and its own sync loop, which is what an app gets.

import { readdir, readFile, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  AttachmentQueue,
  AttachmentState,
  AttachmentTable,
  NodeFileSystemAdapter,
  PowerSyncDatabase,
  Schema,
  Table,
  column,
  createConsoleLogger,
  LogLevels,
} from '@powersync/node';
import { S3RemoteStorageAdapter, s3ConfigFromEnv } from './s3-remote.mjs';

const SAVES_AT_ONCE = 16;

function parseArgs(argv) {
  const [command, ...rest] = argv;
  const values = {};
  for (let i = 0; i < rest.length; i += 2) {
    if (rest[i + 1] === undefined) throw new Error(`${rest[i]} needs a value`);
    values[rest[i].replace(/^-+/, '')] = rest[i + 1];
  }
  const get = (name) => {
    if (values[name] === undefined) throw new Error(`--${name} is required`);
    return values[name];
  };
  return { command, get };
}

/** A database with the app's table (`files`, referencing attachments) and the queue's table. */
async function open(work, prefix) {
  await mkdir(work, { recursive: true });
  const schema = new Schema({
    files: new Table({ attachment_id: column.text }, { localOnly: true }),
    attachments: new AttachmentTable(),
  });
  // warnings only: the default logs a line per attachment, which would time the console
  const logger = createConsoleLogger({ minLevel: LogLevels.warn });
  const db = new PowerSyncDatabase({ schema, logger, database: { dbFilename: 'app.db', dbLocation: work } });
  await db.init();
  const remote = new S3RemoteStorageAdapter(s3ConfigFromEnv(), prefix);
  await remote.createBucketIfMissing();
  const queue = new AttachmentQueue({
    db,
    logger,
    localStorage: new NodeFileSystemAdapter(path.join(work, 'files')),
    remoteStorage: remote,
    watchAttachments: (onUpdate, signal) => {
      db.watch(
        'SELECT attachment_id FROM files',
        [],
        {
          onResult: (result) =>
            onUpdate((result.rows?._array ?? []).map((row) => ({ id: row.attachment_id, fileExtension: 'bin' }))),
        },
        { signal },
      );
    },
  });
  return { db, queue };
}

/** Resolves once `count` attachments are SYNCED (the queue's own sync loop does the work). */
async function allSynced(db, count) {
  const controller = new AbortController();
  for await (const result of db.watch(
    'SELECT count(*) AS synced FROM attachments WHERE state = ?',
    [AttachmentState.SYNCED],
    { signal: controller.signal, throttleMs: 10 },
  )) {
    if (result.rows._array[0].synced >= count) {
      controller.abort();
      return;
    }
  }
}

async function upload(args) {
  const source = args.get('source');
  const work = args.get('work');
  const { db, queue } = await open(work, args.get('prefix'));
  const names = (await readdir(source)).sort();
  const started = performance.now();
  await queue.startSync();
  const synced = allSynced(db, names.length);
  const ids = [];
  let next = 0;
  const saver = async () => {
    while (next < names.length) {
      const name = names[next++];
      const data = await readFile(path.join(source, name));
      const saved = await queue.saveFile({
        data: data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength),
        fileExtension: 'bin',
        updateHook: async (tx, attachment) => {
          await tx.execute('INSERT INTO files (id, attachment_id) VALUES (uuid(), ?)', [attachment.id]);
        },
      });
      ids.push(saved.id);
    }
  };
  await Promise.all(Array.from({ length: SAVES_AT_ONCE }, saver));
  const savedSeconds = (performance.now() - started) / 1000;
  await synced;
  const seconds = (performance.now() - started) / 1000;
  await queue.stopSync();
  await db.close();
  await writeFile(path.join(work, 'manifest.txt'), ids.join('\n'));
  return `seconds=${seconds.toFixed(3)} saved_seconds=${savedSeconds.toFixed(3)} count=${names.length}`;
}

async function download(args) {
  const ids = (await readFile(args.get('manifest'), 'utf8')).split('\n').filter((id) => id !== '');
  const { db, queue } = await open(args.get('work'), args.get('prefix'));
  const started = performance.now();
  // the rows arrive as they would from the sync service: one transaction
  await db.writeTransaction(async (tx) => {
    for (const id of ids) {
      await tx.execute('INSERT INTO files (id, attachment_id) VALUES (uuid(), ?)', [id]);
    }
  });
  const synced = allSynced(db, ids.length);
  await queue.startSync();
  await synced;
  const seconds = (performance.now() - started) / 1000;
  await queue.stopSync();
  await db.close();
  return `seconds=${seconds.toFixed(3)} count=${ids.length}`;
}

const args = parseArgs(process.argv.slice(2));
const scenarios = { upload, download };
if (!scenarios[args.command]) {
  console.error(`usage: node bench.mjs upload|download --flag value ...`);
  process.exit(2);
}
try {
  const line = await scenarios[args.command](args);
  const peakRssMib = process.resourceUsage().maxRSS / 1024;
  console.log(`result ${line} peak_rss_mib=${peakRssMib.toFixed(1)}`);
  process.exit(0);
} catch (error) {
  console.error('bench-js:', error);
  process.exit(1);
}
