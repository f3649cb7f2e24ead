/**
 * How the row statements of one change (a move or removal, and the renumbering after it) are
 * grouped into transactions.
 *
 * With the audio in the table the whole change is one transaction: every reader sees all of it or
 * none of it.
 *
 * With `odbc_audio_on_disk=yes` each row change is a transaction of its own, made together with its
 * files (AudioStep). A file is named by its row's number, and renumbering gives a row the number
 * another row gave up a moment before: one name cannot hold the old row's audio (should the
 * transaction roll back) and the new row's (once it commits) at the same time, so each row change is
 * committed, and its old names removed, before the next one takes them. app_voicemail changes such
 * folders one row at a time too (each RENAME an UPDATE followed by a rename of the files). Between
 * the steps a folder can have a gap; the folder locks keep Asterisk out meanwhile, and should
 * vmbridge stop there, the next change of the folder closes it.
 */
import type { MailboxRef } from '../../spool/types.js';
import type { AudioStep, OdbcFolder, SpoolAudio } from './audio-files.js';
import type { SqlDatabase, SqlSession } from './sql.js';

export interface ChangeSteps {
  /** One row change: its statements and, with the audio on disk, the files that go with them. */
  step<T>(fn: (tx: SqlSession, audio: AudioStep | undefined) => Promise<T>): Promise<T>;
  /** Removes what an interrupted change left in the folder's audio (`rows`: its numbers in the table). */
  tidy(folder: OdbcFolder, rows: (tx: SqlSession) => Promise<ReadonlySet<number>>): Promise<void>;
  /** What was changed or repaired on the way, for the log. */
  readonly repairs: string[];
}

/** The whole change in one transaction: the audio is in the table. */
export function inOneTransaction<T>(db: SqlDatabase, fn: (steps: ChangeSteps) => Promise<T>): Promise<T> {
  return db.transaction((tx) => {
    const steps: ChangeSteps = {
      repairs: [],
      step: (f) => f(tx, undefined),
      tidy: async () => undefined,
    };
    return fn(steps);
  });
}

/** Each row change in its own transaction, with its audio files: the audio is on disk. */
export function stepByStep<T>(db: SqlDatabase, audio: SpoolAudio, ref: MailboxRef, fn: (steps: ChangeSteps) => Promise<T>): Promise<T> {
  return fn(new StepByStep(db, audio, ref));
}

class StepByStep implements ChangeSteps {
  readonly repairs: string[] = [];

  constructor(private readonly db: SqlDatabase, private readonly audio: SpoolAudio, private readonly ref: MailboxRef) {}

  async step<T>(fn: (tx: SqlSession, audio: AudioStep | undefined) => Promise<T>): Promise<T> {
    const files = this.audio.step(this.ref);
    const result = await this.db.transaction(async (tx) => {
      try {
        return await fn(tx, files);
      } catch (err) {
        files.undo();
        throw err;
      }
    });
    // Only here is the commit known to have happened. Had COMMIT itself failed, the new names stay:
    // they are the row's audio if it did commit after all, or second names the next change removes.
    files.committed();
    this.repairs.push(...files.repairs);
    return result;
  }

  async tidy(folder: OdbcFolder, rows: (tx: SqlSession) => Promise<ReadonlySet<number>>): Promise<void> {
    const numbers = await this.db.transaction(rows);
    this.repairs.push(...this.audio.tidy(this.ref, folder, numbers));
  }
}
