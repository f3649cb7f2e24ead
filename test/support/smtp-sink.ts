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
  /** implicit: TLS from the first byte (as port 465); starttls: STARTTLS offered (as 587). PEM text. */
  readonly tls?: { readonly mode: 'implicit' | 'starttls'; readonly cert: string; readonly key: string };
  /** Require AUTH (PLAIN/LOGIN) with exactly this user and password. */
  readonly auth?: { readonly user: string; readonly pass: string };
}

export async function startSmtpSink(opts: SmtpSinkOptions = {}): Promise<SmtpSink> {
  const received: ReceivedMail[] = [];
  const addr = (a: SMTPServerAddress | false): string => (a ? a.address : '');
  const disabled = [...(opts.tls?.mode === 'starttls' ? [] : ['STARTTLS']), ...(opts.auth ? [] : ['AUTH'])];
  const server = new SMTPServer({
    secure: opts.tls?.mode === 'implicit',
    ...(opts.tls ? { cert: opts.tls.cert, key: opts.tls.key } : {}),
    disabledCommands: disabled,
    disableReverseLookup: true,
    authOptional: opts.auth === undefined,
    // A plain test sink may take a login; over TLS that is what a real server does anyway.
    allowInsecureAuth: opts.tls === undefined,
    authMethods: ['PLAIN', 'LOGIN'],
    onAuth(auth, _session, cb) {
      if (opts.auth && auth.username === opts.auth.user && auth.password === opts.auth.pass) cb(null, { user: auth.username });
      else cb(new Error('Invalid username or password'));
    },
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
  // A client that refuses the certificate ends the connection: nothing the sink must act on.
  server.on('error', () => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    port: (server.server.address() as AddressInfo).port,
    received,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
