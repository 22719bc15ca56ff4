# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_netmon_global_optspecs
    string join \n db= log-level= h/help V/version
end

function __fish_netmon_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_netmon_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_netmon_using_subcommand
    set -l cmd (__fish_netmon_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c netmon -n "__fish_netmon_needs_command" -l db -d 'The database file' -r -F
complete -c netmon -n "__fish_netmon_needs_command" -l log-level -d 'How much to log on stderr: error, warn, info, debug or trace' -r
complete -c netmon -n "__fish_netmon_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c netmon -n "__fish_netmon_needs_command" -s V -l version -d 'Print version'
complete -c netmon -n "__fish_netmon_needs_command" -f -a "record" -d 'Sample per-process network counters into the database until stopped'
complete -c netmon -n "__fish_netmon_needs_command" -f -a "status" -d 'Show whether a recorder is running, what it records, and anything wrong'
complete -c netmon -n "__fish_netmon_needs_command" -f -a "service" -d 'Run the recorder (and optionally `netmon serve`) as a background service'
complete -c netmon -n "__fish_netmon_needs_command" -f -a "completions" -d 'Print a shell completion script for netmon on stdout'
complete -c netmon -n "__fish_netmon_needs_command" -f -a "apps" -d 'Traffic per application: received, sent, total, share, first and last seen'
complete -c netmon -n "__fish_netmon_needs_command" -f -a "networks" -d 'Bytes each network and interface carried, and the share applications account for'
complete -c netmon -n "__fish_netmon_needs_command" -f -a "timeline" -d 'Traffic per time bucket, in total or per application, with how much of each was recorded'
complete -c netmon -n "__fish_netmon_needs_command" -f -a "top" -d 'What is using the network right now: per-application rates from the last ticks of a running `netmon record`, refreshed in place'
complete -c netmon -n "__fish_netmon_needs_command" -f -a "report" -d 'Write a report of the recorded history: one self-contained file to open, mail or archive'
complete -c netmon -n "__fish_netmon_needs_command" -f -a "domains" -d 'Browser traffic per website: received, sent, and how it was attributed'
complete -c netmon -n "__fish_netmon_needs_command" -f -a "serve" -d 'Receive the browser extension\'s reports and serve /metrics to Prometheus, on a local port'
complete -c netmon -n "__fish_netmon_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c netmon -n "__fish_netmon_using_subcommand record" -l interval -d 'Time between samples, e.g. 5s, 2s, 500ms (from 10ms to 1h)' -r
complete -c netmon -n "__fish_netmon_using_subcommand record" -l write-every -d 'How often ticks are written to the database, e.g. 10m, 1m (from 0 to 1h); 0 writes every tick' -r
complete -c netmon -n "__fish_netmon_using_subcommand record" -l source -d 'Where the counters come from' -r -f -a "auto\t'Pick the best source available to this user on this OS'
nettop\t'macOS `nettop` (no privileges needed)'
sockdiag\t'Linux sock_diag TCP counters (no privileges needed)'
ebpf\t'Linux eBPF per-process TCP and UDP counters (root or CAP_BPF + CAP_PERFMON)'"
complete -c netmon -n "__fish_netmon_using_subcommand record" -l keep-raw -d 'Keep per-tick samples this long, e.g. 7d (from 1h to 36500d); 0 keeps them forever' -r
complete -c netmon -n "__fish_netmon_using_subcommand record" -l keep-hourly -d 'Keep hourly totals this long, e.g. 90d (from 1h to 36500d); 0 keeps them forever' -r
complete -c netmon -n "__fish_netmon_using_subcommand record" -l alert-rate -d 'Announce an application that moves more than RATE for a sustained minute, e.g. 50MB/s' -r
complete -c netmon -n "__fish_netmon_using_subcommand record" -l ticks -d 'Stop after this many ticks (for tests and benchmarks)' -r
complete -c netmon -n "__fish_netmon_using_subcommand record" -l sample-timeout -d 'Give up on one sample after this long (the source process is killed)' -r
complete -c netmon -n "__fish_netmon_using_subcommand record" -l max-rate -d 'Bytes per second per counter above which a delta is logged as impossible and dropped' -r
complete -c netmon -n "__fish_netmon_using_subcommand record" -l process-table -d 'Resolve pids from this JSON process table instead of asking the OS (tests: processes this machine does not have, such as Safari and its WebKit services)' -r -F
complete -c netmon -n "__fish_netmon_using_subcommand record" -l db -d 'The database file' -r -F
complete -c netmon -n "__fish_netmon_using_subcommand record" -l log-level -d 'How much to log on stderr: error, warn, info, debug or trace' -r
complete -c netmon -n "__fish_netmon_using_subcommand record" -l include-loopback -d 'Also count traffic that never leaves this machine (loopback)'
complete -c netmon -n "__fish_netmon_using_subcommand record" -l share-with-group -d 'Make the database readable (never writable) by the recorder\'s group'
complete -c netmon -n "__fish_netmon_using_subcommand record" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c netmon -n "__fish_netmon_using_subcommand status" -l stalled-after -d 'Call a running recorder stalled when it has committed nothing for this long beyond its interval' -r
complete -c netmon -n "__fish_netmon_using_subcommand status" -l service-manager -d 'Whose service to ask about the installed recorder (default: launchd on macOS; tests)' -r -f -a "launchd\t''
systemd\t''"
complete -c netmon -n "__fish_netmon_using_subcommand status" -l db -d 'The database file' -r -F
complete -c netmon -n "__fish_netmon_using_subcommand status" -l log-level -d 'How much to log on stderr: error, warn, info, debug or trace' -r
complete -c netmon -n "__fish_netmon_using_subcommand status" -l json -d 'Print one JSON object instead of text (fields are documented in the README)'
complete -c netmon -n "__fish_netmon_using_subcommand status" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c netmon -n "__fish_netmon_using_subcommand service; and not __fish_seen_subcommand_from install uninstall status help" -l db -d 'The database file' -r -F
complete -c netmon -n "__fish_netmon_using_subcommand service; and not __fish_seen_subcommand_from install uninstall status help" -l log-level -d 'How much to log on stderr: error, warn, info, debug or trace' -r
complete -c netmon -n "__fish_netmon_using_subcommand service; and not __fish_seen_subcommand_from install uninstall status help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c netmon -n "__fish_netmon_using_subcommand service; and not __fish_seen_subcommand_from install uninstall status help" -f -a "install" -d 'Write the service definition, enable it at login (or boot) and start it now'
complete -c netmon -n "__fish_netmon_using_subcommand service; and not __fish_seen_subcommand_from install uninstall status help" -f -a "uninstall" -d 'Stop the service and remove its definition. The database is kept'
complete -c netmon -n "__fish_netmon_using_subcommand service; and not __fish_seen_subcommand_from install uninstall status help" -f -a "status" -d 'Show whether the service is installed and running, as the service manager sees it'
complete -c netmon -n "__fish_netmon_using_subcommand service; and not __fish_seen_subcommand_from install uninstall status help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c netmon -n "__fish_netmon_using_subcommand service; and __fish_seen_subcommand_from install" -l manager -d 'The service manager to use (default: launchd on macOS, systemd elsewhere)' -r -f -a "launchd\t''
systemd\t''"
complete -c netmon -n "__fish_netmon_using_subcommand service; and __fish_seen_subcommand_from install" -l root -d 'Write system-wide files under this directory instead of / (packaging, tests)' -r -F
complete -c netmon -n "__fish_netmon_using_subcommand service; and __fish_seen_subcommand_from install" -l reader -d 'With --system: the user who may read the database (its group is given read access)' -r
complete -c netmon -n "__fish_netmon_using_subcommand service; and __fish_seen_subcommand_from install" -l db -d 'The database file' -r -F
complete -c netmon -n "__fish_netmon_using_subcommand service; and __fish_seen_subcommand_from install" -l log-level -d 'How much to log on stderr: error, warn, info, debug or trace' -r
complete -c netmon -n "__fish_netmon_using_subcommand service; and __fish_seen_subcommand_from install" -l system -d 'Linux: a system-wide unit run as root, instead of a unit of your own user'
complete -c netmon -n "__fish_netmon_using_subcommand service; and __fish_seen_subcommand_from install" -l serve -d 'Also install `netmon serve` (the ingest server for the browser extension)'
complete -c netmon -n "__fish_netmon_using_subcommand service; and __fish_seen_subcommand_from install" -l dry-run -d 'Print the files and the commands, and change nothing'
complete -c netmon -n "__fish_netmon_using_subcommand service; and __fish_seen_subcommand_from install" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c netmon -n "__fish_netmon_using_subcommand service; and __fish_seen_subcommand_from uninstall" -l manager -d 'The service manager to use (default: launchd on macOS, systemd elsewhere)' -r -f -a "launchd\t''
systemd\t''"
complete -c netmon -n "__fish_netmon_using_subcommand service; and __fish_seen_subcommand_from uninstall" -l root -d 'Write system-wide files under this directory instead of / (packaging, tests)' -r -F
complete -c netmon -n "__fish_netmon_using_subcommand service; and __fish_seen_subcommand_from uninstall" -l db -d 'The database file' -r -F
complete -c netmon -n "__fish_netmon_using_subcommand service; and __fish_seen_subcommand_from uninstall" -l log-level -d 'How much to log on stderr: error, warn, info, debug or trace' -r
complete -c netmon -n "__fish_netmon_using_subcommand service; and __fish_seen_subcommand_from uninstall" -l system -d 'Linux: a system-wide unit run as root, instead of a unit of your own user'
complete -c netmon -n "__fish_netmon_using_subcommand service; and __fish_seen_subcommand_from uninstall" -l dry-run -d 'Print the commands, and change nothing'
complete -c netmon -n "__fish_netmon_using_subcommand service; and __fish_seen_subcommand_from uninstall" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c netmon -n "__fish_netmon_using_subcommand service; and __fish_seen_subcommand_from status" -l manager -d 'The service manager to use (default: launchd on macOS, systemd elsewhere)' -r -f -a "launchd\t''
systemd\t''"
complete -c netmon -n "__fish_netmon_using_subcommand service; and __fish_seen_subcommand_from status" -l root -d 'Write system-wide files under this directory instead of / (packaging, tests)' -r -F
complete -c netmon -n "__fish_netmon_using_subcommand service; and __fish_seen_subcommand_from status" -l db -d 'The database file' -r -F
complete -c netmon -n "__fish_netmon_using_subcommand service; and __fish_seen_subcommand_from status" -l log-level -d 'How much to log on stderr: error, warn, info, debug or trace' -r
complete -c netmon -n "__fish_netmon_using_subcommand service; and __fish_seen_subcommand_from status" -l system -d 'Linux: a system-wide unit run as root, instead of a unit of your own user'
complete -c netmon -n "__fish_netmon_using_subcommand service; and __fish_seen_subcommand_from status" -l json -d 'Print one JSON object instead of text'
complete -c netmon -n "__fish_netmon_using_subcommand service; and __fish_seen_subcommand_from status" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c netmon -n "__fish_netmon_using_subcommand service; and __fish_seen_subcommand_from help" -f -a "install" -d 'Write the service definition, enable it at login (or boot) and start it now'
complete -c netmon -n "__fish_netmon_using_subcommand service; and __fish_seen_subcommand_from help" -f -a "uninstall" -d 'Stop the service and remove its definition. The database is kept'
complete -c netmon -n "__fish_netmon_using_subcommand service; and __fish_seen_subcommand_from help" -f -a "status" -d 'Show whether the service is installed and running, as the service manager sees it'
complete -c netmon -n "__fish_netmon_using_subcommand service; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c netmon -n "__fish_netmon_using_subcommand completions" -l db -d 'The database file' -r -F
complete -c netmon -n "__fish_netmon_using_subcommand completions" -l log-level -d 'How much to log on stderr: error, warn, info, debug or trace' -r
complete -c netmon -n "__fish_netmon_using_subcommand completions" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c netmon -n "__fish_netmon_using_subcommand apps" -l sort -d 'Order of the rows: total, in, out (largest first) or name' -r -f -a "total\t'Most bytes in and out first'
in\t'Most bytes received first'
out\t'Most bytes sent first'
name\t'By name, A to Z'"
complete -c netmon -n "__fish_netmon_using_subcommand apps" -l limit -d 'Show at most N rows (up to 1000000); 0 shows all' -r
complete -c netmon -n "__fish_netmon_using_subcommand apps" -l app -d 'Only applications whose name contains PATTERN (case-insensitive), or matches it as a glob when it holds * or ?' -r
complete -c netmon -n "__fish_netmon_using_subcommand apps" -l network -d 'Only the bytes counted on this network: its name, label or id (`netmon networks`)' -r
complete -c netmon -n "__fish_netmon_using_subcommand apps" -l since -d 'Cover this long up to now, e.g. 90m, 24h, 7d, 2w' -r
complete -c netmon -n "__fish_netmon_using_subcommand apps" -l from -d 'Start here: a date (2024-05-01, today, yesterday) or a local date-time ("2024-05-01 13:30"), or RFC 3339 with an offset' -r
complete -c netmon -n "__fish_netmon_using_subcommand apps" -l until -d 'End here (exclusive); a date means the end of that day, so --from D --until D is day D' -r
complete -c netmon -n "__fish_netmon_using_subcommand apps" -l now -d 'Answer as if it were this instant (RFC 3339), for reproducible reports and tests' -r
complete -c netmon -n "__fish_netmon_using_subcommand apps" -l db -d 'The database file' -r -F
complete -c netmon -n "__fish_netmon_using_subcommand apps" -l log-level -d 'How much to log on stderr: error, warn, info, debug or trace' -r
complete -c netmon -n "__fish_netmon_using_subcommand apps" -l json -d 'Print one JSON document instead of a table'
complete -c netmon -n "__fish_netmon_using_subcommand apps" -l ndjson -d 'Print one JSON object per line (newline-delimited JSON), one per row'
complete -c netmon -n "__fish_netmon_using_subcommand apps" -l csv -d 'Print CSV (RFC 4180) with a header row and raw numbers'
complete -c netmon -n "__fish_netmon_using_subcommand apps" -l bytes -d 'Show exact byte counts in tables instead of human units'
complete -c netmon -n "__fish_netmon_using_subcommand apps" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c netmon -n "__fish_netmon_using_subcommand networks; and not __fish_seen_subcommand_from name cap help" -l since -d 'Cover this long up to now, e.g. 90m, 24h, 7d, 2w' -r
complete -c netmon -n "__fish_netmon_using_subcommand networks; and not __fish_seen_subcommand_from name cap help" -l from -d 'Start here: a date (2024-05-01, today, yesterday) or a local date-time ("2024-05-01 13:30"), or RFC 3339 with an offset' -r
complete -c netmon -n "__fish_netmon_using_subcommand networks; and not __fish_seen_subcommand_from name cap help" -l until -d 'End here (exclusive); a date means the end of that day, so --from D --until D is day D' -r
complete -c netmon -n "__fish_netmon_using_subcommand networks; and not __fish_seen_subcommand_from name cap help" -l now -d 'Answer as if it were this instant (RFC 3339), for reproducible reports and tests' -r
complete -c netmon -n "__fish_netmon_using_subcommand networks; and not __fish_seen_subcommand_from name cap help" -l db -d 'The database file' -r -F
complete -c netmon -n "__fish_netmon_using_subcommand networks; and not __fish_seen_subcommand_from name cap help" -l log-level -d 'How much to log on stderr: error, warn, info, debug or trace' -r
complete -c netmon -n "__fish_netmon_using_subcommand networks; and not __fish_seen_subcommand_from name cap help" -l json -d 'Print one JSON document instead of a table'
complete -c netmon -n "__fish_netmon_using_subcommand networks; and not __fish_seen_subcommand_from name cap help" -l ndjson -d 'Print one JSON object per line (newline-delimited JSON), one per row'
complete -c netmon -n "__fish_netmon_using_subcommand networks; and not __fish_seen_subcommand_from name cap help" -l csv -d 'Print CSV (RFC 4180) with a header row and raw numbers'
complete -c netmon -n "__fish_netmon_using_subcommand networks; and not __fish_seen_subcommand_from name cap help" -l bytes -d 'Show exact byte counts in tables instead of human units'
complete -c netmon -n "__fish_netmon_using_subcommand networks; and not __fish_seen_subcommand_from name cap help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c netmon -n "__fish_netmon_using_subcommand networks; and not __fish_seen_subcommand_from name cap help" -f -a "name" -d 'Give a network a name of your own (shown everywhere instead of its label)'
complete -c netmon -n "__fish_netmon_using_subcommand networks; and not __fish_seen_subcommand_from name cap help" -f -a "cap" -d 'Set a data cap on a network (or `all`), or remove it with --remove'
complete -c netmon -n "__fish_netmon_using_subcommand networks; and not __fish_seen_subcommand_from name cap help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c netmon -n "__fish_netmon_using_subcommand networks; and __fish_seen_subcommand_from name" -l db -d 'The database file' -r -F
complete -c netmon -n "__fish_netmon_using_subcommand networks; and __fish_seen_subcommand_from name" -l log-level -d 'How much to log on stderr: error, warn, info, debug or trace' -r
complete -c netmon -n "__fish_netmon_using_subcommand networks; and __fish_seen_subcommand_from name" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c netmon -n "__fish_netmon_using_subcommand networks; and __fish_seen_subcommand_from cap" -l period -d 'How often the cap starts over' -r -f -a "day\t''
week\t''
month\t''"
complete -c netmon -n "__fish_netmon_using_subcommand networks; and __fish_seen_subcommand_from cap" -l resets-on -d 'The day the period starts: day of the month (1–31; past a month\'s end, its last day) or of the week (1 = Monday … 7 = Sunday). Default 1' -r
complete -c netmon -n "__fish_netmon_using_subcommand networks; and __fish_seen_subcommand_from cap" -l db -d 'The database file' -r -F
complete -c netmon -n "__fish_netmon_using_subcommand networks; and __fish_seen_subcommand_from cap" -l log-level -d 'How much to log on stderr: error, warn, info, debug or trace' -r
complete -c netmon -n "__fish_netmon_using_subcommand networks; and __fish_seen_subcommand_from cap" -l remove -d 'Remove the network\'s cap'
complete -c netmon -n "__fish_netmon_using_subcommand networks; and __fish_seen_subcommand_from cap" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c netmon -n "__fish_netmon_using_subcommand networks; and __fish_seen_subcommand_from help" -f -a "name" -d 'Give a network a name of your own (shown everywhere instead of its label)'
complete -c netmon -n "__fish_netmon_using_subcommand networks; and __fish_seen_subcommand_from help" -f -a "cap" -d 'Set a data cap on a network (or `all`), or remove it with --remove'
complete -c netmon -n "__fish_netmon_using_subcommand networks; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c netmon -n "__fish_netmon_using_subcommand timeline" -l bucket -d 'Bucket length: a duration dividing a day (5m, 15m, 1h, 6h) or whole days (1d, 7d)' -r
complete -c netmon -n "__fish_netmon_using_subcommand timeline" -l app -d 'Only applications whose name contains PATTERN (case-insensitive), or matches it as a glob when it holds * or ?' -r
complete -c netmon -n "__fish_netmon_using_subcommand timeline" -l network -d 'Only the bytes counted on this network: its name, label or id (`netmon networks`)' -r
complete -c netmon -n "__fish_netmon_using_subcommand timeline" -l since -d 'Cover this long up to now, e.g. 90m, 24h, 7d, 2w' -r
complete -c netmon -n "__fish_netmon_using_subcommand timeline" -l from -d 'Start here: a date (2024-05-01, today, yesterday) or a local date-time ("2024-05-01 13:30"), or RFC 3339 with an offset' -r
complete -c netmon -n "__fish_netmon_using_subcommand timeline" -l until -d 'End here (exclusive); a date means the end of that day, so --from D --until D is day D' -r
complete -c netmon -n "__fish_netmon_using_subcommand timeline" -l now -d 'Answer as if it were this instant (RFC 3339), for reproducible reports and tests' -r
complete -c netmon -n "__fish_netmon_using_subcommand timeline" -l db -d 'The database file' -r -F
complete -c netmon -n "__fish_netmon_using_subcommand timeline" -l log-level -d 'How much to log on stderr: error, warn, info, debug or trace' -r
complete -c netmon -n "__fish_netmon_using_subcommand timeline" -l per-app -d 'One row per bucket and application (only those with traffic) instead of totals'
complete -c netmon -n "__fish_netmon_using_subcommand timeline" -l json -d 'Print one JSON document instead of a table'
complete -c netmon -n "__fish_netmon_using_subcommand timeline" -l ndjson -d 'Print one JSON object per line (newline-delimited JSON), one per row'
complete -c netmon -n "__fish_netmon_using_subcommand timeline" -l csv -d 'Print CSV (RFC 4180) with a header row and raw numbers'
complete -c netmon -n "__fish_netmon_using_subcommand timeline" -l bytes -d 'Show exact byte counts in tables instead of human units'
complete -c netmon -n "__fish_netmon_using_subcommand timeline" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c netmon -n "__fish_netmon_using_subcommand top" -l window -d 'Average rates over the ticks of this window, e.g. 15s, 1m (from 1s to 1d)' -r
complete -c netmon -n "__fish_netmon_using_subcommand top" -l refresh -d 'Redraw this often in a terminal, e.g. 1s, 500ms (from 50ms to 1h)' -r
complete -c netmon -n "__fish_netmon_using_subcommand top" -l db -d 'The database file' -r -F
complete -c netmon -n "__fish_netmon_using_subcommand top" -l log-level -d 'How much to log on stderr: error, warn, info, debug or trace' -r
complete -c netmon -n "__fish_netmon_using_subcommand top" -l once -d 'Print one snapshot and exit'
complete -c netmon -n "__fish_netmon_using_subcommand top" -l oneline -d 'Print one line for menu-bar tools (SwiftBar, xbar): current rates and today\'s total'
complete -c netmon -n "__fish_netmon_using_subcommand top" -l json -d 'Print one JSON document instead of a table'
complete -c netmon -n "__fish_netmon_using_subcommand top" -l ndjson -d 'Print one JSON object per line (newline-delimited JSON), one per row'
complete -c netmon -n "__fish_netmon_using_subcommand top" -l csv -d 'Print CSV (RFC 4180) with a header row and raw numbers'
complete -c netmon -n "__fish_netmon_using_subcommand top" -l bytes -d 'Show exact byte counts in tables instead of human units'
complete -c netmon -n "__fish_netmon_using_subcommand top" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c netmon -n "__fish_netmon_using_subcommand report; and not __fish_seen_subcommand_from html help" -l db -d 'The database file' -r -F
complete -c netmon -n "__fish_netmon_using_subcommand report; and not __fish_seen_subcommand_from html help" -l log-level -d 'How much to log on stderr: error, warn, info, debug or trace' -r
complete -c netmon -n "__fish_netmon_using_subcommand report; and not __fish_seen_subcommand_from html help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c netmon -n "__fish_netmon_using_subcommand report; and not __fish_seen_subcommand_from html help" -f -a "html" -d 'An offline HTML report: headline figures, a timeline stacked by application, top applications and websites, an hour-of-day heatmap, daily and monthly totals, and every application in a sortable table'
complete -c netmon -n "__fish_netmon_using_subcommand report; and not __fish_seen_subcommand_from html help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c netmon -n "__fish_netmon_using_subcommand report; and __fish_seen_subcommand_from html" -s o -l output -d 'Where to write the report; - writes it to stdout' -r -F
complete -c netmon -n "__fish_netmon_using_subcommand report; and __fish_seen_subcommand_from html" -l series -d 'How many applications the timeline draws separately (1 to 10), largest first; the rest are stacked as "other"' -r
complete -c netmon -n "__fish_netmon_using_subcommand report; and __fish_seen_subcommand_from html" -l network -d 'Only the applications\' bytes counted on this network: its name, label or id (`netmon networks`). Websites are not split by network and show every network' -r
complete -c netmon -n "__fish_netmon_using_subcommand report; and __fish_seen_subcommand_from html" -l from -d 'Start here: a date (2024-05-01, today, yesterday) or a local date-time ("2024-05-01 13:30"), or RFC 3339 with an offset' -r
complete -c netmon -n "__fish_netmon_using_subcommand report; and __fish_seen_subcommand_from html" -l until -d 'End here (exclusive); a date means the end of that day, so --from D --until D is day D' -r
complete -c netmon -n "__fish_netmon_using_subcommand report; and __fish_seen_subcommand_from html" -l now -d 'Answer as if it were this instant (RFC 3339), for reproducible reports and tests' -r
complete -c netmon -n "__fish_netmon_using_subcommand report; and __fish_seen_subcommand_from html" -l since -d 'Cover this long up to now, e.g. 24h, 7d, 30d, 365d' -r
complete -c netmon -n "__fish_netmon_using_subcommand report; and __fish_seen_subcommand_from html" -l db -d 'The database file' -r -F
complete -c netmon -n "__fish_netmon_using_subcommand report; and __fish_seen_subcommand_from html" -l log-level -d 'How much to log on stderr: error, warn, info, debug or trace' -r
complete -c netmon -n "__fish_netmon_using_subcommand report; and __fish_seen_subcommand_from html" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c netmon -n "__fish_netmon_using_subcommand report; and __fish_seen_subcommand_from help" -f -a "html" -d 'An offline HTML report: headline figures, a timeline stacked by application, top applications and websites, an hour-of-day heatmap, daily and monthly totals, and every application in a sortable table'
complete -c netmon -n "__fish_netmon_using_subcommand report; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c netmon -n "__fish_netmon_using_subcommand domains" -l since -d 'Cover this long up to now, e.g. 90m, 24h, 7d, 2w' -r
complete -c netmon -n "__fish_netmon_using_subcommand domains" -l from -d 'Start here: a date (2024-05-01, today, yesterday) or a local date-time ("2024-05-01 13:30"), or RFC 3339 with an offset' -r
complete -c netmon -n "__fish_netmon_using_subcommand domains" -l until -d 'End here (exclusive); a date means the end of that day, so --from D --until D is day D' -r
complete -c netmon -n "__fish_netmon_using_subcommand domains" -l now -d 'Answer as if it were this instant (RFC 3339), for reproducible reports and tests' -r
complete -c netmon -n "__fish_netmon_using_subcommand domains" -l app -d 'Only browsers whose application name contains PATTERN (case-insensitive), or matches it as a glob when it holds * or ?' -r
complete -c netmon -n "__fish_netmon_using_subcommand domains" -l sort -d 'Order of the rows: total, in, out (largest first) or name' -r -f -a "total\t'Most bytes in and out first'
in\t'Most bytes received first'
out\t'Most bytes sent first'
name\t'By name, A to Z'"
complete -c netmon -n "__fish_netmon_using_subcommand domains" -l limit -d 'Show at most N rows (up to 1000000); 0 shows all' -r
complete -c netmon -n "__fish_netmon_using_subcommand domains" -l db -d 'The database file' -r -F
complete -c netmon -n "__fish_netmon_using_subcommand domains" -l log-level -d 'How much to log on stderr: error, warn, info, debug or trace' -r
complete -c netmon -n "__fish_netmon_using_subcommand domains" -l no-rollup -d 'One row per host (www.bbc.co.uk, static.bbc.co.uk) instead of per registrable domain'
complete -c netmon -n "__fish_netmon_using_subcommand domains" -l hosts -d 'List each domain\'s hosts under it (nested "hosts" in JSON; following rows in CSV)'
complete -c netmon -n "__fish_netmon_using_subcommand domains" -l json -d 'Print one JSON document instead of a table'
complete -c netmon -n "__fish_netmon_using_subcommand domains" -l ndjson -d 'Print one JSON object per line (newline-delimited JSON), one per row'
complete -c netmon -n "__fish_netmon_using_subcommand domains" -l csv -d 'Print CSV (RFC 4180) with a header row and raw numbers'
complete -c netmon -n "__fish_netmon_using_subcommand domains" -l bytes -d 'Show exact byte counts in tables instead of human units'
complete -c netmon -n "__fish_netmon_using_subcommand domains" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c netmon -n "__fish_netmon_using_subcommand serve" -l listen -d 'Address and port to listen on' -r
complete -c netmon -n "__fish_netmon_using_subcommand serve" -l metrics-apps -d 'How many applications get a series of their own in /metrics; the rest are app="(other)"' -r
complete -c netmon -n "__fish_netmon_using_subcommand serve" -l metrics-websites -d 'How many websites (registrable domains) get a series of their own in /metrics; the rest are domain="(other)"' -r
complete -c netmon -n "__fish_netmon_using_subcommand serve" -l metrics-networks -d 'How many network and interface pairs get a series of their own in /metrics; the rest are network="(other)", one series per interface kind' -r
complete -c netmon -n "__fish_netmon_using_subcommand serve" -l metrics-min-bytes -d 'Bytes (received and sent, all time) an application, website or network interface needs before it can get a series of its own in /metrics' -r
complete -c netmon -n "__fish_netmon_using_subcommand serve" -l client-timeout -d 'How long a client may take to send a whole request (head and body) before it gets 408' -r
complete -c netmon -n "__fish_netmon_using_subcommand serve" -l db -d 'The database file' -r -F
complete -c netmon -n "__fish_netmon_using_subcommand serve" -l log-level -d 'How much to log on stderr: error, warn, info, debug or trace' -r
complete -c netmon -n "__fish_netmon_using_subcommand serve" -l allow-remote -d 'Allow --listen on an address other machines can reach'
complete -c netmon -n "__fish_netmon_using_subcommand serve" -l print-token -d 'Print the access token (creating it if needed) and exit'
complete -c netmon -n "__fish_netmon_using_subcommand serve" -l print-metrics-token -d 'Print the read-only token of GET /metrics (creating it if needed) and exit'
complete -c netmon -n "__fish_netmon_using_subcommand serve" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c netmon -n "__fish_netmon_using_subcommand help; and not __fish_seen_subcommand_from record status service completions apps networks timeline top report domains serve help" -f -a "record" -d 'Sample per-process network counters into the database until stopped'
complete -c netmon -n "__fish_netmon_using_subcommand help; and not __fish_seen_subcommand_from record status service completions apps networks timeline top report domains serve help" -f -a "status" -d 'Show whether a recorder is running, what it records, and anything wrong'
complete -c netmon -n "__fish_netmon_using_subcommand help; and not __fish_seen_subcommand_from record status service completions apps networks timeline top report domains serve help" -f -a "service" -d 'Run the recorder (and optionally `netmon serve`) as a background service'
complete -c netmon -n "__fish_netmon_using_subcommand help; and not __fish_seen_subcommand_from record status service completions apps networks timeline top report domains serve help" -f -a "completions" -d 'Print a shell completion script for netmon on stdout'
complete -c netmon -n "__fish_netmon_using_subcommand help; and not __fish_seen_subcommand_from record status service completions apps networks timeline top report domains serve help" -f -a "apps" -d 'Traffic per application: received, sent, total, share, first and last seen'
complete -c netmon -n "__fish_netmon_using_subcommand help; and not __fish_seen_subcommand_from record status service completions apps networks timeline top report domains serve help" -f -a "networks" -d 'Bytes each network and interface carried, and the share applications account for'
complete -c netmon -n "__fish_netmon_using_subcommand help; and not __fish_seen_subcommand_from record status service completions apps networks timeline top report domains serve help" -f -a "timeline" -d 'Traffic per time bucket, in total or per application, with how much of each was recorded'
complete -c netmon -n "__fish_netmon_using_subcommand help; and not __fish_seen_subcommand_from record status service completions apps networks timeline top report domains serve help" -f -a "top" -d 'What is using the network right now: per-application rates from the last ticks of a running `netmon record`, refreshed in place'
complete -c netmon -n "__fish_netmon_using_subcommand help; and not __fish_seen_subcommand_from record status service completions apps networks timeline top report domains serve help" -f -a "report" -d 'Write a report of the recorded history: one self-contained file to open, mail or archive'
complete -c netmon -n "__fish_netmon_using_subcommand help; and not __fish_seen_subcommand_from record status service completions apps networks timeline top report domains serve help" -f -a "domains" -d 'Browser traffic per website: received, sent, and how it was attributed'
complete -c netmon -n "__fish_netmon_using_subcommand help; and not __fish_seen_subcommand_from record status service completions apps networks timeline top report domains serve help" -f -a "serve" -d 'Receive the browser extension\'s reports and serve /metrics to Prometheus, on a local port'
complete -c netmon -n "__fish_netmon_using_subcommand help; and not __fish_seen_subcommand_from record status service completions apps networks timeline top report domains serve help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c netmon -n "__fish_netmon_using_subcommand help; and __fish_seen_subcommand_from service" -f -a "install" -d 'Write the service definition, enable it at login (or boot) and start it now'
complete -c netmon -n "__fish_netmon_using_subcommand help; and __fish_seen_subcommand_from service" -f -a "uninstall" -d 'Stop the service and remove its definition. The database is kept'
complete -c netmon -n "__fish_netmon_using_subcommand help; and __fish_seen_subcommand_from service" -f -a "status" -d 'Show whether the service is installed and running, as the service manager sees it'
complete -c netmon -n "__fish_netmon_using_subcommand help; and __fish_seen_subcommand_from networks" -f -a "name" -d 'Give a network a name of your own (shown everywhere instead of its label)'
complete -c netmon -n "__fish_netmon_using_subcommand help; and __fish_seen_subcommand_from networks" -f -a "cap" -d 'Set a data cap on a network (or `all`), or remove it with --remove'
complete -c netmon -n "__fish_netmon_using_subcommand help; and __fish_seen_subcommand_from report" -f -a "html" -d 'An offline HTML report: headline figures, a timeline stacked by application, top applications and websites, an hour-of-day heatmap, daily and monthly totals, and every application in a sortable table'
