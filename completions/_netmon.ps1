
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'netmon' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'netmon'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'netmon' {
            [CompletionResult]::new('--db', '--db', [CompletionResultType]::ParameterName, 'The database file')
            [CompletionResult]::new('--log-level', '--log-level', [CompletionResultType]::ParameterName, 'How much to log on stderr: error, warn, info, debug or trace')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('record', 'record', [CompletionResultType]::ParameterValue, 'Sample per-process network counters into the database until stopped')
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'Show whether a recorder is running, what it records, and anything wrong')
            [CompletionResult]::new('service', 'service', [CompletionResultType]::ParameterValue, 'Run the recorder (and optionally `netmon serve`) as a background service')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print a shell completion script for netmon on stdout')
            [CompletionResult]::new('apps', 'apps', [CompletionResultType]::ParameterValue, 'Traffic per application: received, sent, total, share, first and last seen')
            [CompletionResult]::new('networks', 'networks', [CompletionResultType]::ParameterValue, 'Bytes each network and interface carried, and the share applications account for')
            [CompletionResult]::new('timeline', 'timeline', [CompletionResultType]::ParameterValue, 'Traffic per time bucket, in total or per application, with how much of each was recorded')
            [CompletionResult]::new('top', 'top', [CompletionResultType]::ParameterValue, 'What is using the network right now: per-application rates from the last ticks of a running `netmon record`, refreshed in place')
            [CompletionResult]::new('report', 'report', [CompletionResultType]::ParameterValue, 'Write a report of the recorded history: one self-contained file to open, mail or archive')
            [CompletionResult]::new('domains', 'domains', [CompletionResultType]::ParameterValue, 'Browser traffic per website: received, sent, and how it was attributed')
            [CompletionResult]::new('serve', 'serve', [CompletionResultType]::ParameterValue, 'Receive the browser extension''s reports and serve /metrics to Prometheus, on a local port')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'netmon;record' {
            [CompletionResult]::new('--interval', '--interval', [CompletionResultType]::ParameterName, 'Time between samples, e.g. 5s, 2s, 500ms (from 10ms to 1h)')
            [CompletionResult]::new('--write-every', '--write-every', [CompletionResultType]::ParameterName, 'How often ticks are written to the database, e.g. 10m, 1m (from 0 to 1h); 0 writes every tick')
            [CompletionResult]::new('--source', '--source', [CompletionResultType]::ParameterName, 'Where the counters come from')
            [CompletionResult]::new('--keep-raw', '--keep-raw', [CompletionResultType]::ParameterName, 'Keep per-tick samples this long, e.g. 7d (from 1h to 36500d); 0 keeps them forever')
            [CompletionResult]::new('--keep-hourly', '--keep-hourly', [CompletionResultType]::ParameterName, 'Keep hourly totals this long, e.g. 90d (from 1h to 36500d); 0 keeps them forever')
            [CompletionResult]::new('--alert-rate', '--alert-rate', [CompletionResultType]::ParameterName, 'Announce an application that moves more than RATE for a sustained minute, e.g. 50MB/s')
            [CompletionResult]::new('--ticks', '--ticks', [CompletionResultType]::ParameterName, 'Stop after this many ticks (for tests and benchmarks)')
            [CompletionResult]::new('--sample-timeout', '--sample-timeout', [CompletionResultType]::ParameterName, 'Give up on one sample after this long (the source process is killed)')
            [CompletionResult]::new('--max-rate', '--max-rate', [CompletionResultType]::ParameterName, 'Bytes per second per counter above which a delta is logged as impossible and dropped')
            [CompletionResult]::new('--process-table', '--process-table', [CompletionResultType]::ParameterName, 'Resolve pids from this JSON process table instead of asking the OS (tests: processes this machine does not have, such as Safari and its WebKit services)')
            [CompletionResult]::new('--db', '--db', [CompletionResultType]::ParameterName, 'The database file')
            [CompletionResult]::new('--log-level', '--log-level', [CompletionResultType]::ParameterName, 'How much to log on stderr: error, warn, info, debug or trace')
            [CompletionResult]::new('--include-loopback', '--include-loopback', [CompletionResultType]::ParameterName, 'Also count traffic that never leaves this machine (loopback)')
            [CompletionResult]::new('--share-with-group', '--share-with-group', [CompletionResultType]::ParameterName, 'Make the database readable (never writable) by the recorder''s group')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'netmon;status' {
            [CompletionResult]::new('--stalled-after', '--stalled-after', [CompletionResultType]::ParameterName, 'Call a running recorder stalled when it has committed nothing for this long beyond its interval')
            [CompletionResult]::new('--service-manager', '--service-manager', [CompletionResultType]::ParameterName, 'Whose service to ask about the installed recorder (default: launchd on macOS; tests)')
            [CompletionResult]::new('--db', '--db', [CompletionResultType]::ParameterName, 'The database file')
            [CompletionResult]::new('--log-level', '--log-level', [CompletionResultType]::ParameterName, 'How much to log on stderr: error, warn, info, debug or trace')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON object instead of text (fields are documented in the README)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'netmon;service' {
            [CompletionResult]::new('--db', '--db', [CompletionResultType]::ParameterName, 'The database file')
            [CompletionResult]::new('--log-level', '--log-level', [CompletionResultType]::ParameterName, 'How much to log on stderr: error, warn, info, debug or trace')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('install', 'install', [CompletionResultType]::ParameterValue, 'Write the service definition, enable it at login (or boot) and start it now')
            [CompletionResult]::new('uninstall', 'uninstall', [CompletionResultType]::ParameterValue, 'Stop the service and remove its definition. The database is kept')
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'Show whether the service is installed and running, as the service manager sees it')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'netmon;service;install' {
            [CompletionResult]::new('--manager', '--manager', [CompletionResultType]::ParameterName, 'The service manager to use (default: launchd on macOS, systemd elsewhere)')
            [CompletionResult]::new('--root', '--root', [CompletionResultType]::ParameterName, 'Write system-wide files under this directory instead of / (packaging, tests)')
            [CompletionResult]::new('--reader', '--reader', [CompletionResultType]::ParameterName, 'With --system: the user who may read the database (its group is given read access)')
            [CompletionResult]::new('--db', '--db', [CompletionResultType]::ParameterName, 'The database file')
            [CompletionResult]::new('--log-level', '--log-level', [CompletionResultType]::ParameterName, 'How much to log on stderr: error, warn, info, debug or trace')
            [CompletionResult]::new('--system', '--system', [CompletionResultType]::ParameterName, 'Linux: a system-wide unit run as root, instead of a unit of your own user')
            [CompletionResult]::new('--serve', '--serve', [CompletionResultType]::ParameterName, 'Also install `netmon serve` (the ingest server for the browser extension)')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Print the files and the commands, and change nothing')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'netmon;service;uninstall' {
            [CompletionResult]::new('--manager', '--manager', [CompletionResultType]::ParameterName, 'The service manager to use (default: launchd on macOS, systemd elsewhere)')
            [CompletionResult]::new('--root', '--root', [CompletionResultType]::ParameterName, 'Write system-wide files under this directory instead of / (packaging, tests)')
            [CompletionResult]::new('--db', '--db', [CompletionResultType]::ParameterName, 'The database file')
            [CompletionResult]::new('--log-level', '--log-level', [CompletionResultType]::ParameterName, 'How much to log on stderr: error, warn, info, debug or trace')
            [CompletionResult]::new('--system', '--system', [CompletionResultType]::ParameterName, 'Linux: a system-wide unit run as root, instead of a unit of your own user')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Print the commands, and change nothing')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'netmon;service;status' {
            [CompletionResult]::new('--manager', '--manager', [CompletionResultType]::ParameterName, 'The service manager to use (default: launchd on macOS, systemd elsewhere)')
            [CompletionResult]::new('--root', '--root', [CompletionResultType]::ParameterName, 'Write system-wide files under this directory instead of / (packaging, tests)')
            [CompletionResult]::new('--db', '--db', [CompletionResultType]::ParameterName, 'The database file')
            [CompletionResult]::new('--log-level', '--log-level', [CompletionResultType]::ParameterName, 'How much to log on stderr: error, warn, info, debug or trace')
            [CompletionResult]::new('--system', '--system', [CompletionResultType]::ParameterName, 'Linux: a system-wide unit run as root, instead of a unit of your own user')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON object instead of text')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'netmon;service;help' {
            [CompletionResult]::new('install', 'install', [CompletionResultType]::ParameterValue, 'Write the service definition, enable it at login (or boot) and start it now')
            [CompletionResult]::new('uninstall', 'uninstall', [CompletionResultType]::ParameterValue, 'Stop the service and remove its definition. The database is kept')
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'Show whether the service is installed and running, as the service manager sees it')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'netmon;service;help;install' {
            break
        }
        'netmon;service;help;uninstall' {
            break
        }
        'netmon;service;help;status' {
            break
        }
        'netmon;service;help;help' {
            break
        }
        'netmon;completions' {
            [CompletionResult]::new('--db', '--db', [CompletionResultType]::ParameterName, 'The database file')
            [CompletionResult]::new('--log-level', '--log-level', [CompletionResultType]::ParameterName, 'How much to log on stderr: error, warn, info, debug or trace')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'netmon;apps' {
            [CompletionResult]::new('--sort', '--sort', [CompletionResultType]::ParameterName, 'Order of the rows: total, in, out (largest first) or name')
            [CompletionResult]::new('--limit', '--limit', [CompletionResultType]::ParameterName, 'Show at most N rows (up to 1000000); 0 shows all')
            [CompletionResult]::new('--app', '--app', [CompletionResultType]::ParameterName, 'Only applications whose name contains PATTERN (case-insensitive), or matches it as a glob when it holds * or ?')
            [CompletionResult]::new('--network', '--network', [CompletionResultType]::ParameterName, 'Only the bytes counted on this network: its name, label or id (`netmon networks`)')
            [CompletionResult]::new('--since', '--since', [CompletionResultType]::ParameterName, 'Cover this long up to now, e.g. 90m, 24h, 7d, 2w')
            [CompletionResult]::new('--from', '--from', [CompletionResultType]::ParameterName, 'Start here: a date (2024-05-01, today, yesterday) or a local date-time ("2024-05-01 13:30"), or RFC 3339 with an offset')
            [CompletionResult]::new('--until', '--until', [CompletionResultType]::ParameterName, 'End here (exclusive); a date means the end of that day, so --from D --until D is day D')
            [CompletionResult]::new('--now', '--now', [CompletionResultType]::ParameterName, 'Answer as if it were this instant (RFC 3339), for reproducible reports and tests')
            [CompletionResult]::new('--db', '--db', [CompletionResultType]::ParameterName, 'The database file')
            [CompletionResult]::new('--log-level', '--log-level', [CompletionResultType]::ParameterName, 'How much to log on stderr: error, warn, info, debug or trace')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document instead of a table')
            [CompletionResult]::new('--ndjson', '--ndjson', [CompletionResultType]::ParameterName, 'Print one JSON object per line (newline-delimited JSON), one per row')
            [CompletionResult]::new('--csv', '--csv', [CompletionResultType]::ParameterName, 'Print CSV (RFC 4180) with a header row and raw numbers')
            [CompletionResult]::new('--bytes', '--bytes', [CompletionResultType]::ParameterName, 'Show exact byte counts in tables instead of human units')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'netmon;networks' {
            [CompletionResult]::new('--since', '--since', [CompletionResultType]::ParameterName, 'Cover this long up to now, e.g. 90m, 24h, 7d, 2w')
            [CompletionResult]::new('--from', '--from', [CompletionResultType]::ParameterName, 'Start here: a date (2024-05-01, today, yesterday) or a local date-time ("2024-05-01 13:30"), or RFC 3339 with an offset')
            [CompletionResult]::new('--until', '--until', [CompletionResultType]::ParameterName, 'End here (exclusive); a date means the end of that day, so --from D --until D is day D')
            [CompletionResult]::new('--now', '--now', [CompletionResultType]::ParameterName, 'Answer as if it were this instant (RFC 3339), for reproducible reports and tests')
            [CompletionResult]::new('--db', '--db', [CompletionResultType]::ParameterName, 'The database file')
            [CompletionResult]::new('--log-level', '--log-level', [CompletionResultType]::ParameterName, 'How much to log on stderr: error, warn, info, debug or trace')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document instead of a table')
            [CompletionResult]::new('--ndjson', '--ndjson', [CompletionResultType]::ParameterName, 'Print one JSON object per line (newline-delimited JSON), one per row')
            [CompletionResult]::new('--csv', '--csv', [CompletionResultType]::ParameterName, 'Print CSV (RFC 4180) with a header row and raw numbers')
            [CompletionResult]::new('--bytes', '--bytes', [CompletionResultType]::ParameterName, 'Show exact byte counts in tables instead of human units')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('name', 'name', [CompletionResultType]::ParameterValue, 'Give a network a name of your own (shown everywhere instead of its label)')
            [CompletionResult]::new('cap', 'cap', [CompletionResultType]::ParameterValue, 'Set a data cap on a network (or `all`), or remove it with --remove')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'netmon;networks;name' {
            [CompletionResult]::new('--db', '--db', [CompletionResultType]::ParameterName, 'The database file')
            [CompletionResult]::new('--log-level', '--log-level', [CompletionResultType]::ParameterName, 'How much to log on stderr: error, warn, info, debug or trace')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'netmon;networks;cap' {
            [CompletionResult]::new('--period', '--period', [CompletionResultType]::ParameterName, 'How often the cap starts over')
            [CompletionResult]::new('--resets-on', '--resets-on', [CompletionResultType]::ParameterName, 'The day the period starts: day of the month (1–31; past a month''s end, its last day) or of the week (1 = Monday … 7 = Sunday). Default 1')
            [CompletionResult]::new('--db', '--db', [CompletionResultType]::ParameterName, 'The database file')
            [CompletionResult]::new('--log-level', '--log-level', [CompletionResultType]::ParameterName, 'How much to log on stderr: error, warn, info, debug or trace')
            [CompletionResult]::new('--remove', '--remove', [CompletionResultType]::ParameterName, 'Remove the network''s cap')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'netmon;networks;help' {
            [CompletionResult]::new('name', 'name', [CompletionResultType]::ParameterValue, 'Give a network a name of your own (shown everywhere instead of its label)')
            [CompletionResult]::new('cap', 'cap', [CompletionResultType]::ParameterValue, 'Set a data cap on a network (or `all`), or remove it with --remove')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'netmon;networks;help;name' {
            break
        }
        'netmon;networks;help;cap' {
            break
        }
        'netmon;networks;help;help' {
            break
        }
        'netmon;timeline' {
            [CompletionResult]::new('--bucket', '--bucket', [CompletionResultType]::ParameterName, 'Bucket length: a duration dividing a day (5m, 15m, 1h, 6h) or whole days (1d, 7d)')
            [CompletionResult]::new('--app', '--app', [CompletionResultType]::ParameterName, 'Only applications whose name contains PATTERN (case-insensitive), or matches it as a glob when it holds * or ?')
            [CompletionResult]::new('--network', '--network', [CompletionResultType]::ParameterName, 'Only the bytes counted on this network: its name, label or id (`netmon networks`)')
            [CompletionResult]::new('--since', '--since', [CompletionResultType]::ParameterName, 'Cover this long up to now, e.g. 90m, 24h, 7d, 2w')
            [CompletionResult]::new('--from', '--from', [CompletionResultType]::ParameterName, 'Start here: a date (2024-05-01, today, yesterday) or a local date-time ("2024-05-01 13:30"), or RFC 3339 with an offset')
            [CompletionResult]::new('--until', '--until', [CompletionResultType]::ParameterName, 'End here (exclusive); a date means the end of that day, so --from D --until D is day D')
            [CompletionResult]::new('--now', '--now', [CompletionResultType]::ParameterName, 'Answer as if it were this instant (RFC 3339), for reproducible reports and tests')
            [CompletionResult]::new('--db', '--db', [CompletionResultType]::ParameterName, 'The database file')
            [CompletionResult]::new('--log-level', '--log-level', [CompletionResultType]::ParameterName, 'How much to log on stderr: error, warn, info, debug or trace')
            [CompletionResult]::new('--per-app', '--per-app', [CompletionResultType]::ParameterName, 'One row per bucket and application (only those with traffic) instead of totals')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document instead of a table')
            [CompletionResult]::new('--ndjson', '--ndjson', [CompletionResultType]::ParameterName, 'Print one JSON object per line (newline-delimited JSON), one per row')
            [CompletionResult]::new('--csv', '--csv', [CompletionResultType]::ParameterName, 'Print CSV (RFC 4180) with a header row and raw numbers')
            [CompletionResult]::new('--bytes', '--bytes', [CompletionResultType]::ParameterName, 'Show exact byte counts in tables instead of human units')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'netmon;top' {
            [CompletionResult]::new('--window', '--window', [CompletionResultType]::ParameterName, 'Average rates over the ticks of this window, e.g. 15s, 1m (from 1s to 1d)')
            [CompletionResult]::new('--refresh', '--refresh', [CompletionResultType]::ParameterName, 'Redraw this often in a terminal, e.g. 1s, 500ms (from 50ms to 1h)')
            [CompletionResult]::new('--db', '--db', [CompletionResultType]::ParameterName, 'The database file')
            [CompletionResult]::new('--log-level', '--log-level', [CompletionResultType]::ParameterName, 'How much to log on stderr: error, warn, info, debug or trace')
            [CompletionResult]::new('--once', '--once', [CompletionResultType]::ParameterName, 'Print one snapshot and exit')
            [CompletionResult]::new('--oneline', '--oneline', [CompletionResultType]::ParameterName, 'Print one line for menu-bar tools (SwiftBar, xbar): current rates and today''s total')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document instead of a table')
            [CompletionResult]::new('--ndjson', '--ndjson', [CompletionResultType]::ParameterName, 'Print one JSON object per line (newline-delimited JSON), one per row')
            [CompletionResult]::new('--csv', '--csv', [CompletionResultType]::ParameterName, 'Print CSV (RFC 4180) with a header row and raw numbers')
            [CompletionResult]::new('--bytes', '--bytes', [CompletionResultType]::ParameterName, 'Show exact byte counts in tables instead of human units')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'netmon;report' {
            [CompletionResult]::new('--db', '--db', [CompletionResultType]::ParameterName, 'The database file')
            [CompletionResult]::new('--log-level', '--log-level', [CompletionResultType]::ParameterName, 'How much to log on stderr: error, warn, info, debug or trace')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('html', 'html', [CompletionResultType]::ParameterValue, 'An offline HTML report: headline figures, a timeline stacked by application, top applications and websites, an hour-of-day heatmap, daily and monthly totals, and every application in a sortable table')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'netmon;report;html' {
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Where to write the report; - writes it to stdout')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Where to write the report; - writes it to stdout')
            [CompletionResult]::new('--series', '--series', [CompletionResultType]::ParameterName, 'How many applications the timeline draws separately (1 to 10), largest first; the rest are stacked as "other"')
            [CompletionResult]::new('--network', '--network', [CompletionResultType]::ParameterName, 'Only the applications'' bytes counted on this network: its name, label or id (`netmon networks`). Websites are not split by network and show every network')
            [CompletionResult]::new('--from', '--from', [CompletionResultType]::ParameterName, 'Start here: a date (2024-05-01, today, yesterday) or a local date-time ("2024-05-01 13:30"), or RFC 3339 with an offset')
            [CompletionResult]::new('--until', '--until', [CompletionResultType]::ParameterName, 'End here (exclusive); a date means the end of that day, so --from D --until D is day D')
            [CompletionResult]::new('--now', '--now', [CompletionResultType]::ParameterName, 'Answer as if it were this instant (RFC 3339), for reproducible reports and tests')
            [CompletionResult]::new('--since', '--since', [CompletionResultType]::ParameterName, 'Cover this long up to now, e.g. 24h, 7d, 30d, 365d')
            [CompletionResult]::new('--db', '--db', [CompletionResultType]::ParameterName, 'The database file')
            [CompletionResult]::new('--log-level', '--log-level', [CompletionResultType]::ParameterName, 'How much to log on stderr: error, warn, info, debug or trace')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'netmon;report;help' {
            [CompletionResult]::new('html', 'html', [CompletionResultType]::ParameterValue, 'An offline HTML report: headline figures, a timeline stacked by application, top applications and websites, an hour-of-day heatmap, daily and monthly totals, and every application in a sortable table')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'netmon;report;help;html' {
            break
        }
        'netmon;report;help;help' {
            break
        }
        'netmon;domains' {
            [CompletionResult]::new('--since', '--since', [CompletionResultType]::ParameterName, 'Cover this long up to now, e.g. 90m, 24h, 7d, 2w')
            [CompletionResult]::new('--from', '--from', [CompletionResultType]::ParameterName, 'Start here: a date (2024-05-01, today, yesterday) or a local date-time ("2024-05-01 13:30"), or RFC 3339 with an offset')
            [CompletionResult]::new('--until', '--until', [CompletionResultType]::ParameterName, 'End here (exclusive); a date means the end of that day, so --from D --until D is day D')
            [CompletionResult]::new('--now', '--now', [CompletionResultType]::ParameterName, 'Answer as if it were this instant (RFC 3339), for reproducible reports and tests')
            [CompletionResult]::new('--app', '--app', [CompletionResultType]::ParameterName, 'Only browsers whose application name contains PATTERN (case-insensitive), or matches it as a glob when it holds * or ?')
            [CompletionResult]::new('--sort', '--sort', [CompletionResultType]::ParameterName, 'Order of the rows: total, in, out (largest first) or name')
            [CompletionResult]::new('--limit', '--limit', [CompletionResultType]::ParameterName, 'Show at most N rows (up to 1000000); 0 shows all')
            [CompletionResult]::new('--db', '--db', [CompletionResultType]::ParameterName, 'The database file')
            [CompletionResult]::new('--log-level', '--log-level', [CompletionResultType]::ParameterName, 'How much to log on stderr: error, warn, info, debug or trace')
            [CompletionResult]::new('--no-rollup', '--no-rollup', [CompletionResultType]::ParameterName, 'One row per host (www.bbc.co.uk, static.bbc.co.uk) instead of per registrable domain')
            [CompletionResult]::new('--hosts', '--hosts', [CompletionResultType]::ParameterName, 'List each domain''s hosts under it (nested "hosts" in JSON; following rows in CSV)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document instead of a table')
            [CompletionResult]::new('--ndjson', '--ndjson', [CompletionResultType]::ParameterName, 'Print one JSON object per line (newline-delimited JSON), one per row')
            [CompletionResult]::new('--csv', '--csv', [CompletionResultType]::ParameterName, 'Print CSV (RFC 4180) with a header row and raw numbers')
            [CompletionResult]::new('--bytes', '--bytes', [CompletionResultType]::ParameterName, 'Show exact byte counts in tables instead of human units')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'netmon;serve' {
            [CompletionResult]::new('--listen', '--listen', [CompletionResultType]::ParameterName, 'Address and port to listen on')
            [CompletionResult]::new('--metrics-apps', '--metrics-apps', [CompletionResultType]::ParameterName, 'How many applications get a series of their own in /metrics; the rest are app="(other)"')
            [CompletionResult]::new('--metrics-websites', '--metrics-websites', [CompletionResultType]::ParameterName, 'How many websites (registrable domains) get a series of their own in /metrics; the rest are domain="(other)"')
            [CompletionResult]::new('--metrics-networks', '--metrics-networks', [CompletionResultType]::ParameterName, 'How many network and interface pairs get a series of their own in /metrics; the rest are network="(other)", one series per interface kind')
            [CompletionResult]::new('--metrics-min-bytes', '--metrics-min-bytes', [CompletionResultType]::ParameterName, 'Bytes (received and sent, all time) an application, website or network interface needs before it can get a series of its own in /metrics')
            [CompletionResult]::new('--client-timeout', '--client-timeout', [CompletionResultType]::ParameterName, 'How long a client may take to send a whole request (head and body) before it gets 408')
            [CompletionResult]::new('--db', '--db', [CompletionResultType]::ParameterName, 'The database file')
            [CompletionResult]::new('--log-level', '--log-level', [CompletionResultType]::ParameterName, 'How much to log on stderr: error, warn, info, debug or trace')
            [CompletionResult]::new('--allow-remote', '--allow-remote', [CompletionResultType]::ParameterName, 'Allow --listen on an address other machines can reach')
            [CompletionResult]::new('--print-token', '--print-token', [CompletionResultType]::ParameterName, 'Print the access token (creating it if needed) and exit')
            [CompletionResult]::new('--print-metrics-token', '--print-metrics-token', [CompletionResultType]::ParameterName, 'Print the read-only token of GET /metrics (creating it if needed) and exit')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'netmon;help' {
            [CompletionResult]::new('record', 'record', [CompletionResultType]::ParameterValue, 'Sample per-process network counters into the database until stopped')
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'Show whether a recorder is running, what it records, and anything wrong')
            [CompletionResult]::new('service', 'service', [CompletionResultType]::ParameterValue, 'Run the recorder (and optionally `netmon serve`) as a background service')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print a shell completion script for netmon on stdout')
            [CompletionResult]::new('apps', 'apps', [CompletionResultType]::ParameterValue, 'Traffic per application: received, sent, total, share, first and last seen')
            [CompletionResult]::new('networks', 'networks', [CompletionResultType]::ParameterValue, 'Bytes each network and interface carried, and the share applications account for')
            [CompletionResult]::new('timeline', 'timeline', [CompletionResultType]::ParameterValue, 'Traffic per time bucket, in total or per application, with how much of each was recorded')
            [CompletionResult]::new('top', 'top', [CompletionResultType]::ParameterValue, 'What is using the network right now: per-application rates from the last ticks of a running `netmon record`, refreshed in place')
            [CompletionResult]::new('report', 'report', [CompletionResultType]::ParameterValue, 'Write a report of the recorded history: one self-contained file to open, mail or archive')
            [CompletionResult]::new('domains', 'domains', [CompletionResultType]::ParameterValue, 'Browser traffic per website: received, sent, and how it was attributed')
            [CompletionResult]::new('serve', 'serve', [CompletionResultType]::ParameterValue, 'Receive the browser extension''s reports and serve /metrics to Prometheus, on a local port')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'netmon;help;record' {
            break
        }
        'netmon;help;status' {
            break
        }
        'netmon;help;service' {
            [CompletionResult]::new('install', 'install', [CompletionResultType]::ParameterValue, 'Write the service definition, enable it at login (or boot) and start it now')
            [CompletionResult]::new('uninstall', 'uninstall', [CompletionResultType]::ParameterValue, 'Stop the service and remove its definition. The database is kept')
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'Show whether the service is installed and running, as the service manager sees it')
            break
        }
        'netmon;help;service;install' {
            break
        }
        'netmon;help;service;uninstall' {
            break
        }
        'netmon;help;service;status' {
            break
        }
        'netmon;help;completions' {
            break
        }
        'netmon;help;apps' {
            break
        }
        'netmon;help;networks' {
            [CompletionResult]::new('name', 'name', [CompletionResultType]::ParameterValue, 'Give a network a name of your own (shown everywhere instead of its label)')
            [CompletionResult]::new('cap', 'cap', [CompletionResultType]::ParameterValue, 'Set a data cap on a network (or `all`), or remove it with --remove')
            break
        }
        'netmon;help;networks;name' {
            break
        }
        'netmon;help;networks;cap' {
            break
        }
        'netmon;help;timeline' {
            break
        }
        'netmon;help;top' {
            break
        }
        'netmon;help;report' {
            [CompletionResult]::new('html', 'html', [CompletionResultType]::ParameterValue, 'An offline HTML report: headline figures, a timeline stacked by application, top applications and websites, an hour-of-day heatmap, daily and monthly totals, and every application in a sortable table')
            break
        }
        'netmon;help;report;html' {
            break
        }
        'netmon;help;domains' {
            break
        }
        'netmon;help;serve' {
            break
        }
        'netmon;help;help' {
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
