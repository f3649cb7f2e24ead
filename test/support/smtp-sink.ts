/** A real SMTP server on loopback that keeps every message it accepts, parsed, with its envelope. */
import type { AddressInfo } from 'node:net';
import { simpleParser, type ParsedMail } from 'mailparser';
import { SMTPServer, type SMTPServerAddress } from 'smtp-server';

export interface ReceivedMail {
  readonly from: string;
  readonly to: readonly string[];
  readonly mail: ParsedMail;
}

export interface SmtpSink {
  readonly port: number;
  /** In the order they were accepted. */
  readonly received: ReceivedMail[];
  close(): Promise<void>;
}

export interface SmtpSinkOptions {
  /** Asked for each message once its data is in: an Error (with responseCode) turns it down. */
  readonly refuse?: () => (Error & { responseCode?: number }) | undefined;
}

export async function startSmtpSink(opts: SmtpSinkOptions = {}): Promise<SmtpSink> {
  const received: ReceivedMail[] = [];
  const addr = (a: SMTPServerAddress | false): string => (a ? a.address : '');
  const server = new SMTPServer({
    secure: false,
    disabledCommands: ['STARTTLS', 'AUTH'],
    disableReverseLookup: true,
    authOptional: true,
    logger: false,
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const refusal = opts.refuse?.();
        if (refusal) {
          cb(refusal);
          return;
        }
        simpleParser(Buffer.concat(chunks)).then((mail) => {
          received.push({ from: addr(session.envelope.mailFrom), to: session.envelope.rcptTo.map((r) => r.address), mail });
          cb();
        }, (err: Error) => cb(err));
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    port: (server.server.address() as AddressInfo).port,
    received,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
