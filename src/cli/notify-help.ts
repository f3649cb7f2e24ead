/**
 * The texts `vmbridge --version`, `vmbridge --help` and `vmbridge notify --help` print. They live
 * apart from main.ts so that bin.ts can print them without loading the rest of vmbridge
 * (docs/notify.md): nothing may be imported here.
 */

/** Kept equal to package.json's version by a unit test. */
export const VERSION = '0.1.0';

export const MAIN_HELP = `vmbridge ${VERSION} - keeps Asterisk voicemail and IMAP mailboxes in step

Usage: vmbridge <command> [options]

Commands:
  run                 Run the service: import every voicemail, then keep spool and IMAP in step
  sync                Reconcile mailboxes once, printing the plan (use --dry-run to only plan)
  notify <args>       Tell a running vmbridge that a mailbox changed (voicemail.conf externnotify)
  doctor              Check the IMAP server, Redis, the spool and voicemail.conf, and say what
                      vmbridge will do with what it finds (exit code 1 if something is missing)
  conf-check [FILE]   Say, for each option a voicemail.conf sets, whether vmbridge uses it, it is
                      Asterisk's own business (phone-side), or vmbridge does not support it

Options for every command:
  -c, --config FILE   Settings file (default: $VMBRIDGE_CONFIG, then /etc/vmbridge/vmbridge.yaml)
  -h, --help          Help for a command: vmbridge <command> --help
  -V, --version       Print the version

Settings are documented in config/vmbridge.example.yaml; any key can be overridden with an
environment variable such as VMBRIDGE_IMAP_HOST or VMBRIDGE_IMAP_LOGIN__MODE.`;

export const NOTIFY_HELP = `Usage: vmbridge notify <context> <mailbox> [<new> <old> <urgent>] [--socket PATH] [--server NAME]
       vmbridge notify "" <mailbox>@<context> [<new> <old> <urgent>] [--socket PATH] [--server NAME]

A drop-in for voicemail.conf's externnotify, which Asterisk runs with either argument shape and
waits for. It hands the mailbox to the running service over its Unix socket (notify.socket), which
queues a reconcile, and returns at once. The counts are ignored: vmbridge counts from the spool.

The socket is --socket PATH, else $VMBRIDGE_NOTIFY_SOCKET, else /run/vmbridge/notify.sock; the
settings file is not read. When no service answers within 200 ms the command says so on standard
error and exits 0: the spool watcher and the sweep find the change anyway.

  -s, --socket PATH   The service's notify.socket
  -c, --config FILE   Read notify.socket from this settings file instead (slower), and when no
                      service listens there, queue the reconcile in its Redis (redis.url)
      --server NAME   The mailbox is on this voicemail server (servers[].name in the settings);
                      leave it out for the main one. Each server's externnotify names its own

Exit code 0 unless the arguments are wrong (2), a name is not a safe spool name or the --config
file does not load (1).

  externnotify = /usr/local/bin/vmbridge notify`;
